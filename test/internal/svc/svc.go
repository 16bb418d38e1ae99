// Package svc starts the real service binaries for the end-to-end and fault
// tests: building them, running them with an environment, keeping their
// output for failure reports, stopping them gracefully or killing them, and
// polling their admin endpoints.
package svc

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the Go package in each dir (relative to the caller's
// directory) into out/<base name of dir>, with the race detector when race
// is set, and returns the binaries' paths in order.
func Build(out string, race bool, dirs ...string) ([]string, error) {
	var bins []string
	for _, dir := range dirs {
		bin := out + "/" + dir[strings.LastIndex(dir, "/")+1:]
		args := []string{"build", "-o", bin}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", dir, err, b)
		}
		bins = append(bins, bin)
	}
	return bins, nil
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a running service binary whose output is kept for failure reports.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
	// stopped: the test signalled or killed it, so an exit is expected.
	stopped bool
}

// Write collects the process's output.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Start starts bin with the environment plus env. Its cleanup stops it with
// SIGTERM if it is still running and prints its output if the test failed
// (or always, with showLogs).
func Start(t *testing.T, name, bin string, showLogs bool, env ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(t, 40*time.Second)
		if t.Failed() || showLogs {
			t.Logf("---- %s output ----\n%s", name, Tail(p.Output(), 6000))
		}
	})
	return p
}

// Alive reports whether the process is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Err is the process's exit error once it has exited (nil for exit code 0).
func (p *Proc) Err() error {
	if p.Alive() {
		return nil
	}
	return p.err
}

// Stopped reports whether the test stopped or killed it (so an exit was
// expected); MarkStopped records that an unexpected exit was reported.
func (p *Proc) Stopped() bool { return p.stopped }

// MarkStopped records that the process's exit has been dealt with.
func (p *Proc) MarkStopped() { p.stopped = true }

// Signal sends sig without waiting.
func (p *Proc) Signal(sig syscall.Signal) {
	p.stopped = true
	_ = p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for exit code 0); ok is false on timeout.
func (p *Proc) Wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	p.stopped = true
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits for a graceful exit; it fails the test if
// the process needed killing or exited with an error, or had exited on its
// own with an error before.
func (p *Proc) Stop(t testing.TB, timeout time.Duration) {
	if !p.Alive() {
		if !p.stopped && p.err != nil {
			t.Errorf("%s had exited on its own with %v; its last lines:\n%s", p.Name, p.err, LastLines(p.Output(), 3))
			p.stopped = true // reported once
		}
		return
	}
	p.Signal(syscall.SIGTERM)
	if err, ok := p.Wait(timeout); !ok {
		p.Kill()
		t.Errorf("%s did not stop within %v of SIGTERM", p.Name, timeout)
	} else if err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.Name, err)
	}
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// HTTPGet returns the status and body of a GET, or 0 and the error text.
func HTTPGet(url string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// PollStatus polls url until it answers want or the timeout passes, and
// returns whether it did and the last answer; it fails the test if p (when
// not nil) exits.
func PollStatus(t testing.TB, p *Proc, url string, want int, timeout time.Duration) (bool, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var code int
	var body string
	for time.Now().Before(deadline) {
		if p != nil && !p.Alive() {
			t.Fatalf("%s exited: %v\n%s", p.Name, p.err, Tail(p.Output(), 4000))
		}
		if code, body = HTTPGet(url); code == want {
			return true, fmt.Sprintf("%d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false, fmt.Sprintf("%d %s", code, body)
}

// WaitStatus is PollStatus that fails the test on timeout.
func WaitStatus(t testing.TB, p *Proc, url string, want int, timeout time.Duration) {
	t.Helper()
	if ok, last := PollStatus(t, p, url, want, timeout); !ok {
		t.Fatalf("%s did not answer %d within %v (last: %s)", url, want, timeout, last)
	}
}
