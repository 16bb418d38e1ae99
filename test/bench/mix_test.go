package main

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// The mix is deterministic for a seed and has the shape docs/performance.md
// states (run: cd test/bench && GOWORK=off go test .).
func TestMixShape(t *testing.T) {
	const n = 200_000
	a, b := NewMix(DefaultMix(9)), NewMix(DefaultMix(9))
	var ha, hb Hit
	seen := map[string]bool{}
	first, email := 0, 0
	for range n {
		a.Next(&ha)
		b.Next(&hb)
		if ha != hb {
			t.Fatalf("same seed, different hits:\n%+v\n%+v", ha, hb)
		}
		if !seen[ha.UA] {
			seen[ha.UA] = true
			first++
		}
		if ha.Email {
			email++
		}
	}
	if a.HeadUAs() < 150 {
		t.Errorf("head has %d User-Agents, want ~200", a.HeadUAs())
	}
	// Over a short run more strings are new than over 1M hits (2.2%).
	if p := float64(first) / n; p < 0.015 || p > 0.06 {
		t.Errorf("first-seen User-Agents %.3f of hits, want 0.015..0.06", p)
	}
	if p := float64(email) / n; p < 0.07 || p > 0.09 {
		t.Errorf("email opens %.3f of hits, want ~0.08", p)
	}
}

// Every generated request is valid HTTP with the headers the edge reads.
func TestRequestBytesParse(t *testing.T) {
	m := NewMix(DefaultMix(1))
	var h Hit
	for range 2000 {
		m.Next(&h)
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(requestBytes(&h, "127.0.0.1:1", true))))
		if err != nil {
			t.Fatal(err)
		}
		q := req.URL.Query()
		if q.Get("key") == "" || req.Header.Get("X-Forwarded-For") != h.IP.String() || req.UserAgent() != h.UA || !req.Close {
			t.Fatalf("bad request for %+v: %v", h, req)
		}
		if !h.Email && !strings.HasPrefix(q.Get("url"), "https://") {
			t.Fatalf("pageview without page url: %s", req.URL)
		}
	}
}

func TestMarkerNumbersMatchRequests(t *testing.T) {
	m := NewMix(DefaultMix(4))
	m.SetMarker("run")
	var h Hit
	for i := 1; i <= 500; i++ {
		m.Next(&h)
		n, ok := markerIndex([]byte(`{"page_url":"`+h.PageURL+`"}`), []byte("/lat/run/"))
		if !ok || n != i {
			t.Fatalf("hit %d carries marker %d (%v): %s", i, n, ok, h.PageURL)
		}
	}
}
