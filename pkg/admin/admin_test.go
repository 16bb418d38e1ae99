package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "pixelstream_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	var ready Readiness
	var brokerDown bool
	ready.Add("kafka", func() error {
		if brokerDown {
			return errors.New("broker unreachable")
		}
		return nil
	})
	s, err := Start("127.0.0.1:0", &ready, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		http.DefaultClient.CloseIdleConnections()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + s.Addr()
	tests := []struct {
		name       string
		setup      func()
		path       string
		wantStatus int
		wantBody   string
	}{
		{"alive", nil, "/healthz", 200, "ok"},
		{"ready", nil, "/readyz", 200, "ready"},
		{"metrics", nil, "/metrics", 200, "pixelstream_test_total 3"},
		{"check fails", func() { brokerDown = true }, "/readyz", 503, "kafka: broker unreachable"},
		{"still alive", nil, "/healthz", 200, "ok"},
		{"draining first", func() { brokerDown = false; ready.Drain() }, "/readyz", 503, "draining"},
	}
	for _, tc := range tests {
		if tc.setup != nil {
			tc.setup()
		}
		code, body := get(t, base+tc.path)
		if code != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%s: %s = %d %q, want %d containing %q", tc.name, tc.path, code, body, tc.wantStatus, tc.wantBody)
		}
	}
}
