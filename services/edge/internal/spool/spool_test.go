package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("SPOOL_KILL9_HELPER") != "" {
		kill9Helper()
		return
	}
	goleak.VerifyTestMain(m)
}

func msg(i int) kafka.Message {
	return kafka.Message{
		Key:   fmt.Appendf(nil, "visitor-%d", i%7),
		Value: fmt.Appendf(nil, "hit-%06d-%s", i, bytes.Repeat([]byte("v"), i%50)),
		Time:  time.Unix(1700000000, int64(i)),
	}
}

func msgs(from, to int) []kafka.Message {
	var out []kafka.Message
	for i := from; i < to; i++ {
		out = append(out, msg(i))
	}
	return out
}

func open(t testing.TB, dir string, maxBytes int64) *Spool {
	t.Helper()
	s, err := Open(Config{Dir: dir, MaxBytes: maxBytes, SyncEvery: 100, SyncInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drain takes and commits everything, returning the record numbers in
// the order they came out.
func drain(t testing.TB, s *Spool) []int {
	t.Helper()
	var out []int
	for {
		b, err := s.Take(64, 200*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			if !s.Drained() {
				t.Fatal("Take found nothing but the spool is not drained")
			}
			return out
		}
		for _, m := range b.Msgs {
			out = append(out, seqOf(t, m))
		}
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
}

func seqOf(t testing.TB, m kafka.Message) int {
	t.Helper()
	n, err := strconv.Atoi(string(m.Value[4:10]))
	if err != nil {
		t.Fatalf("value %q", m.Value)
	}
	if want := msg(n); !bytes.Equal(m.Key, want.Key) || !bytes.Equal(m.Value, want.Value) || !m.Time.Equal(want.Time) {
		t.Fatalf("record %d came back as %q %q %v", n, m.Key, m.Value, m.Time)
	}
	return n
}

func inOrder(t testing.TB, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d records, want %d", len(got), to-from)
	}
	for i, n := range got {
		if n != from+i {
			t.Fatalf("record %d is %d, want %d (order broken)", i, n, from+i)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []kafka.Message{
		{},
		{Key: []byte("k"), Value: []byte("v"), Time: time.Unix(0, 1)},
		{Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte("v"), 70000), Time: time.Unix(1800000000, 999)},
		{Value: []byte("no key")},
	}
	for i, m := range tests {
		b := appendRecord(nil, m)
		if len(b) != recordSize(m) {
			t.Errorf("%d: size %d, recordSize %d", i, len(b), recordSize(m))
		}
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !bytes.Equal(got.Key, m.Key) || !bytes.Equal(got.Value, m.Value) || got.Time.UnixNano() != m.Time.UnixNano() {
			t.Errorf("%d: %+v, want %+v", i, got, m)
		}
		for j := 0; j < len(b); j += 1 + len(b)/500 { // a flipped byte is caught
			c := bytes.Clone(b)
			c[j] ^= 0x40
			if _, err := decodeRecord(c); err == nil {
				t.Errorf("%d: flipping byte %d went unnoticed", i, j)
			}
		}
	}
}

// FuzzDecodeRecord: arbitrary bytes never panic, and whatever decodes
// re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, msg(1)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeRecord(b)
		if err != nil {
			return
		}
		if again := appendRecord(nil, m); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, was %x", again, b)
		}
	})
}

// FuzzDecodeFront: a front file body of arbitrary bytes never panics and
// never yields more records than fit.
func FuzzDecodeFront(f *testing.F) {
	var body []byte
	for i := range 3 {
		r := appendRecord(nil, msg(i))
		body = append(body, byte(len(r)>>24), byte(len(r)>>16), byte(len(r)>>8), byte(len(r)))
		body = append(body, r...)
	}
	f.Add(body)
	f.Add([]byte{0, 0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, _ := decodeFront(b)
		if len(ms)*(4+minRecord) > len(b) {
			t.Fatalf("%d records from %d bytes", len(ms), len(b))
		}
	})
}

func TestAppendTakeInOrder(t *testing.T) {
	s := open(t, t.TempDir(), 1<<30)
	defer s.Close()
	for i := 0; i < 1000; i += 100 {
		if n, err := s.Append(msgs(i, i+100)); n != 100 || err != nil {
			t.Fatalf("append: %d %v", n, err)
		}
	}
	if s.Bytes() == 0 {
		t.Fatal("bytes not counted")
	}
	inOrder(t, drain(t, s), 0, 1000)
	if s.Bytes() != 0 {
		t.Fatalf("%d bytes left after draining", s.Bytes())
	}
}

func TestFrontBatchesComeFirst(t *testing.T) {
	s := open(t, t.TempDir(), 1<<30)
	defer s.Close()
	if _, err := s.Append(msgs(20, 30)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendFront(msgs(0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendFront(msgs(10, 20)); err != nil {
		t.Fatal(err)
	}
	inOrder(t, drain(t, s), 0, 30)
}

func TestReopenKeepsOrderAndBatchInHand(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<30)
	if _, err := s.Append(msgs(0, 500)); err != nil {
		t.Fatal(err)
	}
	// The replayer took a batch and could not deliver it before shutdown.
	b, err := s.Take(64, time.Second, nil)
	if err != nil || b == nil || len(b.Msgs) == 0 {
		t.Fatalf("take: %v %v", b, err)
	}
	held := len(b.Msgs)
	if err := s.Release(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := s.Bytes()

	s = open(t, dir, 1<<30)
	defer s.Close()
	if s.Bytes() != before {
		t.Errorf("reopened with %d bytes, closed with %d", s.Bytes(), before)
	}
	got := drain(t, s)
	inOrder(t, got, 0, 500)
	t.Logf("%d records were in hand at close", held)
}

func TestDirectoryIsPrivateAndLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "spool")
	s := open(t, dir, 1<<20)
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", st.Mode().Perm())
	}
	if _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 1<<20) // the lock is released on close
	s.Close()
}

func TestMaxBytes(t *testing.T) {
	s := open(t, t.TempDir(), 4096)
	defer s.Close()
	n, err := s.Append(msgs(0, 1000))
	if !errors.Is(err, ErrFull) || !IsDiskFull(err) || n == 0 || n == 1000 {
		t.Fatalf("append into a 4 KiB spool: %d, %v", n, err)
	}
	if s.Bytes() > 4096 {
		t.Fatalf("holds %d bytes, bound 4096", s.Bytes())
	}
	if s.Full() == nil {
		t.Fatal("Full() = nil after a refused record")
	}
	if err := s.AppendFront(msgs(0, 100)); !errors.Is(err, ErrFull) {
		t.Fatalf("AppendFront over the bound: %v", err)
	}
	// Draining below 90% clears the state.
	got := drain(t, s)
	inOrder(t, got, 0, n)
	if err := s.Full(); err != nil {
		t.Fatalf("Full() = %v after draining", err)
	}
}

func TestCorruptFrontFile(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	if err := s.AppendFront(msgs(0, 10)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "front-*.batch"))
	if len(files) != 1 {
		t.Fatalf("front files %v", files)
	}
	data, _ := os.ReadFile(files[0])
	data[len(data)-3] ^= 0xff // damage the last record
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 1<<20)
	defer s.Close()
	b, err := s.Take(64, time.Second, nil)
	if err != nil || b == nil {
		t.Fatal(b, err)
	}
	if len(b.Msgs) != 9 || b.Corrupt != 1 {
		t.Fatalf("%d good, %d corrupt, want 9 and 1", len(b.Msgs), b.Corrupt)
	}
	_ = s.Commit(b)
	if !s.Drained() || s.Bytes() != 0 {
		t.Fatalf("drained %v, %d bytes", s.Drained(), s.Bytes())
	}
}

// TestCrashCopy simulates a crash: the directory is copied while the spool
// is open and has not synced, which is what a restarted process finds
// after kill -9 (the kernel's view of the files).
func TestCrashCopy(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxBytes: 1 << 30, SyncEvery: 1 << 30, SyncInterval: time.Hour, SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(msgs(0, 3000)); err != nil { // several segments
		t.Fatal(err)
	}
	b, _ := s.Take(100, time.Second, nil) // a batch in hand, in its front file
	if b == nil {
		t.Fatal("nothing taken")
	}
	crashed := t.TempDir()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := open(t, crashed, 1<<30)
	defer r.Close()
	// The batch in hand comes first; the disk queue's read position was not
	// synced, so it comes again: at least once, never lost, in order.
	got := drain(t, r)
	inOrder(t, got[:len(b.Msgs)], 0, len(b.Msgs))
	inOrder(t, got[len(b.Msgs):], 0, 3000)
}

// TestKill9LosesNothingAppended runs a helper process that appends records
// and kills itself with SIGKILL; everything Append returned for is there.
func TestKill9LosesNothingAppended(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SPOOL_KILL9_HELPER="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v\n%s", err, out)
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(out)))
	if err != nil {
		t.Fatalf("helper output %q", out)
	}
	s := open(t, dir, 1<<30)
	defer s.Close()
	got := drain(t, s)
	if len(got) < n {
		t.Fatalf("%d records after kill -9, %d were appended", len(got), n)
	}
	inOrder(t, got[:n], 0, n)
}

func kill9Helper() {
	s, err := Open(Config{Dir: os.Getenv("SPOOL_KILL9_HELPER"), MaxBytes: 1 << 30, SyncEvery: 1 << 30, SyncInterval: time.Hour})
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	n := 0
	for ; n < 2000; n += 100 {
		if _, err := s.Append(msgs(n, n+100)); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
	}
	fmt.Println(n)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

// BenchmarkAppend: spooling one realistic (600-byte) record, write(2)
// included; fsync every 1000 records or 1 s as by default.
func BenchmarkAppend(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir(), MaxBytes: 1 << 40, SyncEvery: 1000, SyncInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]kafka.Message, 256)
	for i := range batch {
		batch[i] = kafka.Message{Key: bytes.Repeat([]byte("k"), 40), Value: bytes.Repeat([]byte("v"), 560), Time: time.Now()}
	}
	b.ReportAllocs()
	b.SetBytes(600 * int64(len(batch)))
	for b.Loop() {
		if _, err := s.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
}

// TestSeedCorpora keeps the committed fuzz seeds (testdata/fuzz) in step
// with the record format: it checks they decode, and rewrites them with
// SPOOL_WRITE_SEEDS=1.
func TestSeedCorpora(t *testing.T) {
	var front []byte
	for i := range 3 {
		r := appendRecord(nil, msg(i))
		front = append(front, byte(len(r)>>24), byte(len(r)>>16), byte(len(r)>>8), byte(len(r)))
		front = append(front, r...)
	}
	seeds := map[string][][]byte{
		"FuzzDecodeRecord": {appendRecord(nil, msg(1)), appendRecord(nil, kafka.Message{}), appendRecord(nil, msg(49)), {recordVersion, 0, 0, 0, 0}},
		"FuzzDecodeFront":  {front, front[:len(front)-1], {0, 0, 0, 1, 1}, {}},
	}
	for name, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		for i, b := range list {
			path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if os.Getenv("SPOOL_WRITE_SEEDS") == "1" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s is stale or missing (SPOOL_WRITE_SEEDS=1 go test -run TestSeedCorpora rewrites it): %v", path, err)
			}
		}
	}
	if _, err := decodeRecord(seeds["FuzzDecodeRecord"][0]); err != nil {
		t.Fatal(err)
	}
}
