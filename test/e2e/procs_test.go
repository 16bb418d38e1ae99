package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bins holds the real service binaries, built once by TestMain.
var bins struct{ edge, enricher string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pixelstream-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.edge, bins.enricher = filepath.Join(dir, "edge"), filepath.Join(dir, "enricher")
	for _, b := range []struct{ out, pkg string }{{bins.edge, "../../services/edge"}, {bins.enricher, "../../services/enricher"}} {
		cmd := exec.Command("go", "build", "-race", "-o", b.out, ".")
		cmd.Dir = b.pkg
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running service binary whose output is kept for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns everything the process printed so far.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startProc(t *testing.T, name, bin string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(t, 30*time.Second)
		if t.Failed() {
			t.Logf("---- %s output ----\n%s", name, tail(p.Output(), 8000))
		}
	})
	return p
}

// Stop sends SIGTERM and waits for a graceful exit; it fails the test if
// the process needed killing or exited with an error.
func (p *proc) Stop(t *testing.T, timeout time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s exited with %v after SIGTERM", p.name, p.err)
		}
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within %v of SIGTERM", p.name, timeout)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited while starting: %v\n%s", p.name, p.err, tail(p.Output(), 4000))
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s within %v", p.name, url, timeout)
}

// The README's option tables are generated from the binaries; a changed
// option must be re-documented (make readme).
func TestReadmeOptionTables(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, bin := range map[string]string{"edge": bins.edge, "enricher": bins.enricher} {
		out, err := exec.Command(bin, "-print-options").Output()
		if err != nil {
			t.Fatalf("%s -print-options: %v", name, err)
		}
		begin, end := "<!-- options:"+name+":begin -->\n", "\n<!-- options:"+name+":end -->"
		i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
		if i < 0 || j < i {
			t.Fatalf("README.md lacks the %s option markers", name)
		}
		if got := string(readme[i+len(begin) : j]); got != string(bytes.TrimSpace(out)) {
			t.Errorf("README.md %s options are stale: run `make readme`", name)
		}
	}
}
