package server

import (
	"bytes"
	"net"
)

// sniffListener wraps accepted connections in sniffConn.
type sniffListener struct{ net.Listener }

// Accept wraps the next connection.
func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, lastNL: -1}, nil
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
