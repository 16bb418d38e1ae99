package server

import (
	"bytes"
	"net"
	"sync/atomic"
	"time"
)

// sniffListener wraps accepted connections in sniffConn and enforces the
// server's MaxConns.
type sniffListener struct {
	net.Listener
	srv *Server
}

// Accept wraps the next connection. One over MaxConns is answered 503
// with the pixel and closed here, so fasthttp never serves it.
func (l *sniffListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.srv.open.Add(1) > int64(l.srv.cfg.MaxConns) {
			l.srv.open.Add(-1)
			l.srv.tooManyConns.Inc()
			// A fresh socket's send buffer takes the few hundred bytes
			// at once; the deadline only guards against the odd case.
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(l.srv.reject)
			_ = c.Close()
			continue
		}
		return &sniffConn{Conn: c, lastNL: -1, open: &l.srv.open}, nil
	}
}

// sniffConn remembers where the last line feed it read was, so the error
// handler can tell an over-long request line (414) from an over-long header
// block (431): fasthttp v1.78.0 reports both as the same *ErrSmallBuffer,
// after clearing the partly parsed request line.
//
// Why this is exact: fasthttp's read buffer holds ReadBufferSize bytes, and
// it only gives up when that buffer is full of the current request (earlier
// requests on the connection were discarded from it). The current request
// is therefore precisely the last ReadBufferSize bytes read from the
// connection, and its request line ended if and only if one of them is a
// line feed. The one blind spot: blank lines before a request line (allowed
// by RFC 9112, sent by nobody) count as an ended line, giving 431.
//
// Only the goroutine serving the connection reads it and calls
// newlineWithin, so no synchronisation is needed.
type sniffConn struct {
	net.Conn
	read   int64 // bytes read so far
	lastNL int64 // offset of the last '\n' read; -1 before the first
	open   *atomic.Int64
	closed atomic.Bool
}

// Close closes the connection and counts it out of MaxConns once.
func (c *sniffConn) Close() error {
	if c.closed.CompareAndSwap(false, true) && c.open != nil {
		c.open.Add(-1)
	}
	return c.Conn.Close()
}

// Read reads from the connection and notes the last line feed.
func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		// A request's reads usually end with its blank line, so the search
		// from the end stops after a few bytes.
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			c.lastNL = c.read + int64(i)
		}
		c.read += int64(n)
	}
	return n, err
}

// newlineWithin reports whether one of the last n bytes read was '\n'.
func (c *sniffConn) newlineWithin(n int) bool {
	return c.lastNL >= 0 && c.lastNL >= c.read-int64(n)
}
