package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/test/internal/svc"
)

// bins holds the real service binaries, built once by TestMain.
var bins struct{ edge, enricher string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pixelstream-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	built, err := svc.Build(dir, true, "../../services/edge", "../../services/enricher")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.edge, bins.enricher = built[0], built[1]
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The process helpers are shared with the fault tests (internal/svc).
type proc = svc.Proc

func freeAddr(t *testing.T) string { return svc.FreeAddr(t) }

func startProc(t *testing.T, name, bin string, env ...string) *proc {
	t.Helper()
	return svc.Start(t, name, bin, false, env...)
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	svc.WaitStatus(t, p, url, 200, timeout)
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
