// Package spool keeps hits on local disk while Kafka cannot take them, and
// gives them back in the order they came.
//
// The spool is a go-diskqueue (NSQ's disk-backed FIFO) plus "front" batch
// files. The disk queue is the tail: Append adds records to it. Front
// files hold batches that must be replayed before anything in the disk
// queue: batches Kafka refused while they were being written directly
// (they are older than whatever was spooled meanwhile), and each batch the
// replayer takes out of the disk queue, written to a front file before it
// is sent so that it survives a crash or a shutdown until Kafka
// acknowledges it. Take returns the oldest front file first, then the next
// records of the disk queue; Commit deletes a batch once Kafka has it.
//
// Durability (go-diskqueue v1.1.0, read from its source): every record is
// written to its file with one write(2) before Append returns, so a process
// crash (kill -9) loses no appended record: the kernel has it. fsync, of the
// current data file and then of the metadata file (written to a temporary
// file, fsynced and renamed), happens when SyncEvery reads plus writes have
// happened since the last one, every SyncInterval if anything happened, and
// when a data file is rolled over or fully read. A power loss or kernel
// crash can lose what was appended since the last fsync. Front files are
// written to a temporary file, fsynced, renamed and the directory fsynced
// before they count. Close fsyncs the data files and the directory itself,
// because go-diskqueue's Close closes the write file before its final sync
// and so persists metadata without fsyncing the data.
//
// Only one process may use a directory: Open takes an exclusive flock on
// DIR/LOCK.
package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	diskqueue "github.com/nsqio/go-diskqueue"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/pixelstream/pixelstream/pkg/logging"
)

// Config configures a Spool.
type Config struct {
	// Dir holds the spool's files; it is created with mode 0700.
	Dir string
	// MaxBytes bounds the records held (disk queue plus front files,
	// counted as 4 bytes of framing plus the encoded record).
	MaxBytes int64
	// SyncEvery is go-diskqueue's syncEvery: fsync after this many writes
	// plus reads.
	SyncEvery int64
	// SyncInterval is go-diskqueue's syncTimeout: fsync this often while
	// anything was written or read since the last fsync.
	SyncInterval time.Duration
	// SegmentBytes is the size at which a disk queue data file is rolled
	// over (default MaxBytes/16, between 64 KiB and 64 MiB). Disk use can
	// exceed MaxBytes by about one segment: a data file is deleted only
	// once it has been read to its end.
	SegmentBytes int64
	Log          *zap.Logger
}

// MaxRecordBytes bounds one encoded record.
const MaxRecordBytes = 16 << 20

// Errors.
var (
	// ErrFull: the record does not fit under MaxBytes.
	ErrFull = errors.New("spool: full")
	// ErrLocked: another process uses the directory.
	ErrLocked = errors.New("spool: directory in use by another process")
	// ErrClosed: the spool is closed.
	ErrClosed = errors.New("spool: closed")
)

// IsDiskFull reports whether err means the spool could not grow: the
// MaxBytes bound, or the file system out of space or quota.
func IsDiskFull(err error) bool {
	return errors.Is(err, ErrFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

const (
	queueName   = "hits"
	frontPrefix = "front-"
	frontSuffix = ".batch"
	lockName    = "LOCK"
	// frontMagic starts every front file.
	frontMagic = "PSFRONT1"
)

// Spool is safe for concurrent use, except that only one goroutine may
// call Take, Commit and Release (the replayer).
type Spool struct {
	cfg  Config
	log  *zap.Logger
	dq   diskqueue.Interface
	lock *os.File

	appendMu sync.Mutex // Append: one batch's records stay together
	enc      []byte     // Append's encoding buffer, under appendMu

	mu         sync.Mutex
	fronts     []uint64 // sequence numbers of front files waiting, ascending
	nextSeq    uint64
	frontAdded chan struct{}

	bytes     atomic.Int64 // records held, with framing
	inHand    atomic.Int64 // batches taken and not yet committed or released
	overLimit atomic.Bool  // a record was refused for MaxBytes; cleared below 90%
	diskErr   atomic.Pointer[errBox]

	closing   chan struct{}
	closeOnce sync.Once
	dqLog     logging.Throttle
}

type errBox struct{ err error }

// Batch is records taken for replay, oldest first.
type Batch struct {
	Msgs []kafka.Message
	// Corrupt counts records that could not be decoded; they are gone.
	Corrupt int
	seq     uint64
	file    string // the front file holding the batch; "" if none could be written
	size    int64
}

// Open opens (creating if needed) the spool in cfg.Dir, locks it, and
// counts what it holds from an earlier run.
func Open(cfg Config) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("spool: no directory")
	}
	if cfg.MaxBytes <= 0 {
		return nil, errors.New("spool: max bytes must be positive")
	}
	if cfg.SyncEvery < 1 {
		cfg.SyncEvery = 1
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = min(max(cfg.MaxBytes/16, 64<<10), 64<<20)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{cfg: cfg, log: cfg.Log, frontAdded: make(chan struct{}, 1), closing: make(chan struct{})}
	if st, err := os.Stat(cfg.Dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		s.log.Warn("spool directory is readable by others; hits hold personal data", zap.String("dir", cfg.Dir),
			zap.String("mode", st.Mode().Perm().String()))
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, cfg.Dir)
		}
		return nil, fmt.Errorf("spool: lock %s: %w", cfg.Dir, err)
	}
	s.lock = lock
	if err := s.scanFronts(); err != nil {
		s.unlock()
		return nil, err
	}
	queued, err := s.queuedBytes()
	if err != nil {
		s.unlock()
		return nil, err
	}
	s.bytes.Add(queued)
	// go-diskqueue writes its metadata file only at its first sync. Without
	// one, a restart starts writing at offset 0 of data file 0 again, over
	// the records of a crashed run: make it write the file now.
	if _, err := os.Stat(s.metaFile()); errors.Is(err, os.ErrNotExist) {
		if err := s.newQueue().Close(); err != nil {
			s.unlock()
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	s.dq = s.newQueue()
	return s, nil
}

func (s *Spool) newQueue() diskqueue.Interface {
	return diskqueue.New(queueName, s.cfg.Dir, s.cfg.SegmentBytes, minRecord, MaxRecordBytes,
		s.cfg.SyncEvery, s.cfg.SyncInterval, s.logDiskQueue)
}

// logDiskQueue routes go-diskqueue's messages to zap: its INFO lines (a
// file opened) are debug noise; warnings and errors (failed syncs,
// corrupt files renamed *.bad) are rate-limited to one line a second.
func (s *Spool) logDiskQueue(lvl diskqueue.LogLevel, f string, args ...any) {
	if lvl < diskqueue.WARN {
		if ce := s.log.Check(zap.DebugLevel, "diskqueue"); ce != nil {
			ce.Write(zap.String("message", fmt.Sprintf(f, args...)))
		}
		return
	}
	if n, ok := s.dqLog.Allow(); ok {
		s.log.Warn("spool disk queue: "+fmt.Sprintf(f, args...), zap.String("level", lvl.String()), zap.Int64("messages", n))
	}
}

func (s *Spool) metaFile() string {
	return filepath.Join(s.cfg.Dir, queueName+".diskqueue.meta.dat")
}

func (s *Spool) frontFile(seq uint64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%s%020d%s", frontPrefix, seq, frontSuffix))
}

// scanFronts lists the front files of an earlier run and removes
// temporary files of interrupted writes.
func (s *Spool) scanFronts() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp") && strings.HasPrefix(name, frontPrefix):
			_ = os.Remove(filepath.Join(s.cfg.Dir, name))
		case strings.HasPrefix(name, frontPrefix) && strings.HasSuffix(name, frontSuffix):
			seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, frontPrefix), frontSuffix), 10, 64)
			if err != nil {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			s.fronts = append(s.fronts, seq)
			s.nextSeq = max(s.nextSeq, seq+1)
			s.bytes.Add(info.Size() - int64(len(frontMagic)))
		}
	}
	sort.Slice(s.fronts, func(i, j int) bool { return s.fronts[i] < s.fronts[j] })
	return nil
}

// queuedBytes is what the disk queue holds: its data files from the read
// file on, less the read position, per its metadata file (absent: a new
// queue).
func (s *Spool) queuedBytes() (int64, error) {
	var depth, readNum, readPos, writeNum, writePos int64
	if f, err := os.Open(s.metaFile()); err == nil {
		_, err = fmt.Fscanf(f, "%d\n%d,%d\n%d,%d\n", &depth, &readNum, &readPos, &writeNum, &writePos)
		f.Close()
		if err != nil {
			s.log.Warn("spool metadata unreadable; counting every data file", zap.Error(err))
			readNum, readPos = 0, 0
		}
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	var total int64
	prefix := queueName + ".diskqueue."
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".dat") {
			continue
		}
		num, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, prefix), ".dat"), 10, 64)
		if err != nil || num < readNum {
			continue // the metadata file, or a file already read
		}
		info, err := e.Info()
		if err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
		total += info.Size()
		if num == readNum {
			total -= min(readPos, info.Size())
		}
	}
	return total, nil
}

// Bytes is what the spool holds: records with their 4-byte framing.
func (s *Spool) Bytes() int64 { return s.bytes.Load() }

// MaxBytes is the configured bound.
func (s *Spool) MaxBytes() int64 { return s.cfg.MaxBytes }

// Full reports why the spool cannot take records now, or nil: it refused
// a record for MaxBytes and has not drained below 90% since, or the last
// write to disk failed (out of space, a read-only or failing disk).
func (s *Spool) Full() error {
	if b := s.diskErr.Load(); b != nil {
		return b.err
	}
	if s.overLimit.Load() {
		return fmt.Errorf("%w: %d of %d bytes", ErrFull, s.bytes.Load(), s.cfg.MaxBytes)
	}
	return nil
}

func (s *Spool) wrote(err error) {
	if err == nil {
		if s.diskErr.Load() != nil {
			s.diskErr.Store(nil)
			s.log.Info("spool writes succeed again")
		}
		return
	}
	s.diskErr.Store(&errBox{fmt.Errorf("spool write failed: %w", err)})
}

// reserve counts n more bytes if they fit under MaxBytes.
func (s *Spool) reserve(n int64) bool {
	for {
		cur := s.bytes.Load()
		if cur+n > s.cfg.MaxBytes {
			s.overLimit.Store(true)
			return false
		}
		if s.bytes.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (s *Spool) release(n int64) {
	left := s.bytes.Add(-n)
	if left <= s.cfg.MaxBytes/10*9 {
		s.overLimit.Store(false)
	}
	// A drained spool has freed the space its failed write lacked, and once
	// Kafka is back nothing else writes to the spool to prove it: without
	// this, readiness would stay 503 until the next outage. If the disk is
	// still full, the next write sets the error again.
	if left <= 0 && s.diskErr.Load() != nil {
		s.diskErr.Store(nil)
		s.log.Info("spool drained: clearing the last write error")
	}
}

// Append adds msgs, in order, to the tail, copying them. It returns how
// many were added; on an error the rest were not. ErrFull and out-of-space
// errors satisfy IsDiskFull.
func (s *Spool) Append(msgs []kafka.Message) (int, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	select {
	case <-s.closing:
		return 0, ErrClosed
	default:
	}
	for i, m := range msgs {
		s.enc = appendRecord(s.enc[:0], m)
		n := int64(4 + len(s.enc))
		if !s.reserve(n) {
			return i, fmt.Errorf("%w: %d of %d bytes", ErrFull, s.bytes.Load(), s.cfg.MaxBytes)
		}
		err := s.dq.Put(s.enc)
		s.wrote(err)
		if err != nil {
			s.release(n)
			return i, fmt.Errorf("spool: %w", err)
		}
	}
	if cap(s.enc) > 1<<20 {
		s.enc = nil
	}
	return len(msgs), nil
}

// AppendFront writes msgs as one batch to be replayed before everything
// appended so far.
func (s *Spool) AppendFront(msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var size int64
	for _, m := range msgs {
		size += 4 + int64(recordSize(m))
	}
	if !s.reserve(size) {
		return fmt.Errorf("%w: %d of %d bytes", ErrFull, s.bytes.Load(), s.cfg.MaxBytes)
	}
	s.mu.Lock()
	seq := s.nextSeq
	s.nextSeq++
	s.mu.Unlock()
	if err := s.writeFront(seq, msgs); err != nil {
		s.release(size)
		return err
	}
	s.mu.Lock()
	s.fronts = append(s.fronts, seq)
	sort.Slice(s.fronts, func(i, j int) bool { return s.fronts[i] < s.fronts[j] })
	s.mu.Unlock()
	select {
	case s.frontAdded <- struct{}{}:
	default:
	}
	return nil
}

// writeFront writes a front file atomically and durably: temporary file,
// fsync, rename, fsync of the directory.
func (s *Spool) writeFront(seq uint64, msgs []kafka.Message) (err error) {
	defer func() { s.wrote(err) }()
	name := s.frontFile(seq)
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	_, _ = w.WriteString(frontMagic)
	var rec []byte
	for _, m := range msgs {
		rec = appendRecord(rec[:0], m)
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(rec)))
		_, _ = w.Write(l[:])
		_, _ = w.Write(rec)
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err == nil {
		err = syncDir(s.cfg.Dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: front file: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readFront reads a front file. A record that fails its checksum ends the
// file: what follows it cannot be trusted to be framed right.
func readFront(path string) (msgs []kafka.Message, corrupt int, size int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, 0, err
	}
	size = int64(len(data) - len(frontMagic))
	if !strings.HasPrefix(string(data[:min(len(data), len(frontMagic))]), frontMagic) {
		return nil, 1, max(size, 0), nil
	}
	msgs, corrupt = decodeFront(data[len(frontMagic):])
	return msgs, corrupt, size, nil
}

// decodeFront decodes the framed records of a front file body.
func decodeFront(b []byte) (msgs []kafka.Message, corrupt int) {
	for len(b) > 0 {
		if len(b) < 4 {
			return msgs, corrupt + 1
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return msgs, corrupt + 1
		}
		m, err := decodeRecord(b[4 : 4+n])
		if err != nil {
			return msgs, corrupt + 1
		}
		msgs = append(msgs, m)
		b = b[4+n:]
	}
	return msgs, corrupt
}

// Take returns the next batch to replay: the oldest front file, else up to
// max records from the disk queue (written to a front file before Take
// returns, so that they survive until Commit). It waits up to wait for a
// record, and returns nil, nil when none came or wake was signalled.
func (s *Spool) Take(max int, wait time.Duration, wake <-chan struct{}) (*Batch, error) {
	select {
	case <-s.closing:
		return nil, ErrClosed
	default:
	}
	if b := s.takeFront(); b != nil {
		return b, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	rc := s.dq.ReadChan()
	var first []byte
	for first == nil {
		select {
		case first = <-rc:
		case <-t.C:
			return nil, nil
		case <-wake:
			return nil, nil
		case <-s.frontAdded:
			if b := s.takeFront(); b != nil {
				return b, nil
			}
		case <-s.closing:
			return nil, ErrClosed
		}
	}
	b := &Batch{}
	add := func(data []byte) {
		b.size += 4 + int64(len(data))
		m, err := decodeRecord(data)
		if err != nil {
			b.Corrupt++
			return
		}
		b.Msgs = append(b.Msgs, m)
	}
	add(first)
	// go-diskqueue hands out one record per loop of its goroutine: linger
	// a moment to fill the batch.
	t.Reset(2 * time.Millisecond)
fill:
	for len(b.Msgs)+b.Corrupt < max {
		select {
		case data := <-rc:
			add(data)
		case <-t.C:
			break fill
		}
	}
	s.inHand.Add(1)
	if len(b.Msgs) == 0 {
		return b, nil
	}
	s.mu.Lock()
	b.seq = s.nextSeq
	s.nextSeq++
	s.mu.Unlock()
	if err := s.writeFront(b.seq, b.Msgs); err != nil {
		// The records are out of the disk queue: keep them in memory,
		// Release tries again to write them.
		s.log.Error("spool: cannot write the replay batch to a front file; it is held in memory", zap.Error(err),
			zap.Int("records", len(b.Msgs)))
		return b, nil
	}
	b.file = s.frontFile(b.seq)
	return b, nil
}

func (s *Spool) takeFront() *Batch {
	for {
		s.mu.Lock()
		if len(s.fronts) == 0 {
			s.mu.Unlock()
			return nil
		}
		seq := s.fronts[0]
		s.fronts = s.fronts[1:]
		s.mu.Unlock()
		path := s.frontFile(seq)
		msgs, corrupt, size, err := readFront(path)
		if err != nil {
			s.log.Error("spool: cannot read a front file; skipping it", zap.String("file", path), zap.Error(err))
			continue
		}
		s.inHand.Add(1)
		b := &Batch{Msgs: msgs, Corrupt: corrupt, seq: seq, file: path, size: size}
		if corrupt > 0 {
			s.log.Error("spool: corrupt records in a front file", zap.String("file", path), zap.Int("corrupt", corrupt),
				zap.Int("good", len(msgs)))
		}
		return b
	}
}

// Commit forgets b: Kafka has acknowledged its records.
func (s *Spool) Commit(b *Batch) error {
	s.inHand.Add(-1)
	s.release(b.size)
	if b.file == "" {
		return nil
	}
	if err := os.Remove(b.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Release gives back a batch that was not acknowledged (at shutdown): it
// stays first in line. A batch that could not be written to a front file
// is written now; if that fails too its records are lost and the error
// says so.
func (s *Spool) Release(b *Batch) error {
	s.inHand.Add(-1)
	if b.file == "" {
		if len(b.Msgs) == 0 {
			s.release(b.size)
			return nil
		}
		if err := s.writeFront(b.seq, b.Msgs); err != nil {
			s.release(b.size)
			return err
		}
		b.file = s.frontFile(b.seq)
	}
	s.mu.Lock()
	s.fronts = append([]uint64{b.seq}, s.fronts...)
	sort.Slice(s.fronts, func(i, j int) bool { return s.fronts[i] < s.fronts[j] })
	s.mu.Unlock()
	return nil
}

// Drained reports whether the spool holds nothing: no front file, no batch
// in hand, and an empty disk queue. Call it only while no Append can run,
// so that the answer stays true until appends resume. A disk queue
// recovering from a crash (its depth is below zero until it has read past
// the records its metadata did not know of) is not drained.
func (s *Spool) Drained() bool {
	s.mu.Lock()
	fronts := len(s.fronts)
	s.mu.Unlock()
	if fronts > 0 || s.inHand.Load() > 0 || s.dq.Depth() != 0 {
		return false
	}
	if n := s.bytes.Load(); n != 0 {
		// Only after corrupt data files, which go-diskqueue skips
		// (renamed *.bad) without saying how much they held.
		s.log.Warn("spool drained; correcting its byte count", zap.Int64("counted_bytes", n))
		s.release(n)
	}
	return true
}

// Close stops the disk queue, persists its positions, and fsyncs the data
// files and the directory. Batches in hand must be committed or released
// first.
func (s *Spool) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		s.appendMu.Lock() // no Append in progress
		err = s.dq.Close()
		s.appendMu.Unlock()
		entries, rerr := os.ReadDir(s.cfg.Dir)
		if rerr == nil {
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), queueName+".diskqueue.") && strings.HasSuffix(e.Name(), ".dat") {
					if serr := syncFile(filepath.Join(s.cfg.Dir, e.Name())); serr != nil && err == nil {
						err = serr
					}
				}
			}
			if serr := syncDir(s.cfg.Dir); serr != nil && err == nil {
				err = serr
			}
		} else if err == nil {
			err = rerr
		}
		s.unlock()
	})
	if err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (s *Spool) unlock() {
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
}

var _ io.Closer = (*Spool)(nil)
