package projects

import (
	"errors"
	"github.com/pixelstream/pixelstream/services/edge/internal/ratelimit"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

const sampleYAML = `
projects:
  - id: shop
    keys: [shop-key-1, shop-key-2]
    allowed_hosts: [shop.example.com, "*.example.org"]
  - id: blog
    key: blog-key
`

const sampleJSON = `{"projects": [
  {"id": "shop", "keys": ["shop-key-1", "shop-key-2"], "allowed_hosts": ["shop.example.com", "*.example.org"]},
  {"id": "blog", "key": "blog-key"}
]}`

func TestParseFileYAMLAndJSON(t *testing.T) {
	for name, data := range map[string]string{"p.yaml": sampleYAML, "p.json": sampleJSON, "p.yml": sampleJSON} {
		t.Run(name, func(t *testing.T) {
			specs, err := ParseFile(name, []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			set, err := Build(specs)
			if err != nil {
				t.Fatal(err)
			}
			if set.Projects() != 2 || set.Keys() != 3 {
				t.Fatalf("got %d projects, %d keys", set.Projects(), set.Keys())
			}
			for key, id := range map[string]string{"shop-key-1": "shop", "shop-key-2": "shop", "blog-key": "blog"} {
				if p := set.Lookup([]byte(key)); p == nil || p.ID != id {
					t.Errorf("Lookup(%q) = %v, want %s", key, p, id)
				}
			}
			if set.Lookup([]byte("nope")) != nil {
				t.Error("unknown key found")
			}
		})
	}
}

func TestParseFileRejects(t *testing.T) {
	tests := map[string]struct {
		name, data string
		want       error
	}{
		"unknown yaml field": {"p.yaml", "projects:\n  - id: a\n    key: k\n    allowed_host: [x.com]\n", nil},
		"unknown json field": {"p.json", `{"projects":[{"id":"a","key":"k","allowed_host":["x.com"]}]}`, nil},
		"trailing json":      {"p.json", `{"projects":[]} {}`, nil},
		"not yaml":           {"p.yaml", "projects: [", nil},
		"no id":              {"p.yaml", "projects:\n  - key: k\n", ErrNoID},
		"no keys":            {"p.yaml", "projects:\n  - id: a\n", ErrNoKeys},
		"key with space":     {"p.yaml", "projects:\n  - id: a\n    key: 'a b'\n", ErrBadKey},
		"duplicate key":      {"p.yaml", "projects:\n  - id: a\n    key: k\n  - id: b\n    key: k\n", ErrDuplicateKey},
		"duplicate id":       {"p.yaml", "projects:\n  - id: a\n    key: k\n  - id: a\n    key: l\n", ErrDuplicateID},
		"url as host":        {"p.yaml", "projects:\n  - id: a\n    key: k\n    allowed_hosts: ['https://x.com/']\n", ErrBadHost},
		"host with port":     {"p.yaml", "projects:\n  - id: a\n    key: k\n    allowed_hosts: ['x.com:443']\n", ErrBadHost},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			specs, err := ParseFile(tt.name, []byte(tt.data))
			if err == nil {
				_, err = Build(specs)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	specs, err := ParseKeys([]string{"demo=demo-project", "k2=p2", "k3=demo-project"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := Build(specs)
	if err != nil {
		t.Fatal(err)
	}
	if set.Projects() != 2 || set.Lookup([]byte("k3")).ID != "demo-project" || set.Lookup([]byte("k2")).ID != "p2" {
		t.Fatalf("unexpected set from -keys: %d projects", set.Projects())
	}
	for _, bad := range []string{"novalue", "=p", "k=", " = "} {
		if _, err := ParseKeys([]string{bad}); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKeys(%q) error = %v", bad, err)
		}
	}
}

func TestStaticAndFileKeysCollide(t *testing.T) {
	static, _ := ParseKeys([]string{"shop-key-1=other"})
	file, _ := ParseFile("p.yaml", []byte(sampleYAML))
	if _, err := Build(static, file); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("collision error = %v", err)
	}
}

func TestAllowsHost(t *testing.T) {
	specs, _ := ParseFile("p.yaml", []byte(sampleYAML))
	set, _ := Build(specs)
	shop := set.Lookup([]byte("shop-key-1"))
	blog := set.Lookup([]byte("blog-key"))
	tests := []struct {
		p    *Project
		host string
		want bool
	}{
		{shop, "shop.example.com", true},
		{shop, "SHOP.Example.COM", true},
		{shop, "shop.example.com.", true},
		{shop, "", true},
		{shop, "example.com", false},
		{shop, "evil-shop.example.com", false},
		{shop, "www.example.org", true},
		{shop, "a.b.example.org", true},
		{shop, "example.org", false},
		{shop, "example.org.evil.com", false},
		{shop, "xexample.org", false},
		{shop, string(make([]byte, 300)), false},
		{blog, "anything.test", true},
	}
	for _, tt := range tests {
		if got := tt.p.AllowsHost([]byte(tt.host)); got != tt.want {
			t.Errorf("%s.AllowsHost(%q) = %v, want %v", tt.p.ID, tt.host, got, tt.want)
		}
	}
	if got := shop.AllowedHosts(); len(got) != 2 || got[0] != "*.example.org" {
		t.Errorf("AllowedHosts = %v", got)
	}
}

func TestLookupAndAllowsHostDoNotAllocate(t *testing.T) {
	specs, _ := ParseFile("p.yaml", []byte(sampleYAML))
	set, _ := Build(specs)
	key, host := []byte("shop-key-2"), []byte("WWW.example.org")
	n := testing.AllocsPerRun(100, func() {
		p := set.Lookup(key)
		if !p.AllowsHost(host) {
			panic("not allowed")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per lookup", n)
	}
}

func writeFile(t *testing.T, path, data string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	// Explicit mtimes keep the test independent of file system timestamp
	// granularity.
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "projects.yaml")
	t0 := time.Now().Add(-time.Hour)
	writeFile(t, path, sampleYAML, t0)
	static, _ := ParseKeys([]string{"demo=demo-project"})
	reg := prometheus.NewPedanticRegistry()
	r, err := NewRegistry(path, static, reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if r.Lookup([]byte("blog-key")) == nil || r.Lookup([]byte("demo")) == nil {
		t.Fatal("initial keys missing")
	}
	if changed, err := r.Reload(); changed || err != nil {
		t.Fatalf("unchanged file reloaded: %v %v", changed, err)
	}

	// A good change is picked up; static keys survive.
	writeFile(t, path, "projects:\n  - id: news\n    key: news-key\n", t0.Add(time.Second))
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if r.Lookup([]byte("blog-key")) != nil || r.Lookup([]byte("news-key")) == nil || r.Lookup([]byte("demo")) == nil {
		t.Fatal("reload did not swap the set")
	}

	// A bad file keeps the previous set, is counted, and is not retried
	// until it changes again.
	writeFile(t, path, "projects: [", t0.Add(2*time.Second))
	if _, err := r.Reload(); err == nil {
		t.Fatal("bad file accepted")
	}
	if _, err := r.Reload(); err != nil {
		t.Fatalf("unchanged bad file re-read: %v", err)
	}
	if r.Lookup([]byte("news-key")) == nil {
		t.Fatal("bad file replaced the projects")
	}
	if got := testutil.ToFloat64(r.reloadFailed); got != 1 {
		t.Fatalf("failed reloads = %v, want 1", got)
	}

	// A removed file is an error too; the set stays.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(); err == nil {
		t.Fatal("missing file accepted")
	}
	writeFile(t, path, sampleYAML, t0.Add(3*time.Second))
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("file back: %v %v", changed, err)
	}
	if got := testutil.ToFloat64(r.reloadOK); got != 2 {
		t.Fatalf("ok reloads = %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Fatalf("gather: %d %v", n, err)
	}
}

func TestRegistryStartsOnlyWithGoodFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "projects.yaml")
	writeFile(t, path, "projects: [", time.Now())
	if _, err := NewRegistry(path, nil, prometheus.NewRegistry(), zap.NewNop()); err == nil {
		t.Fatal("started with a bad file")
	}
	if _, err := NewRegistry(filepath.Join(t.TempDir(), "missing.yaml"), nil, prometheus.NewRegistry(), zap.NewNop()); err == nil {
		t.Fatal("started with a missing file")
	}
}

// FuzzParseFile feeds arbitrary bytes to both decoders and the validator:
// they must never panic, and anything accepted must yield a consistent Set.
func FuzzParseFile(f *testing.F) {
	f.Add("p.yaml", []byte(sampleYAML))
	f.Add("p.json", []byte(sampleJSON))
	f.Add("p.yaml", []byte("projects:\n  - id: a\n    keys: [k]\n    allowed_hosts: ['*.a.b']\n"))
	f.Add("p.yaml", []byte("projects: &a [*a]"))
	f.Add("p.json", []byte(`{"projects":[{"id":"a","key":"k","allowed_hosts":["*."]}]}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		specs, err := ParseFile(name, data)
		if err != nil {
			return
		}
		set, err := Build(specs)
		if err != nil {
			return
		}
		for _, sp := range specs {
			for _, k := range append([]string{sp.Key}, sp.Keys...) {
				if k == "" {
					continue
				}
				if p := set.Lookup([]byte(k)); p == nil {
					t.Fatalf("accepted key %q not found", k)
				}
			}
		}
	})
}

func TestPrivacySettings(t *testing.T) {
	tests := []struct {
		yaml       string
		wantErr    bool
		wantMode   string
		wantHonour bool
	}{
		{"projects:\n  - id: a\n    key: k\n", false, "", false},
		{"projects:\n  - id: a\n    key: k\n    ip_mode: full\n    privacy_signals: honour\n", false, "full", true},
		{"projects:\n  - id: a\n    key: k\n    ip_mode: drop\n    privacy_signals: record\n", false, "drop", false},
		{"projects:\n  - id: a\n    key: k\n    ip_mode: hashed\n", true, "", false},
		{"projects:\n  - id: a\n    key: k\n    privacy_signals: ignore\n", true, "", false},
	}
	for _, tc := range tests {
		specs, err := ParseFile("p.yaml", []byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		set, err := Build(specs)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%q: err %v", tc.yaml, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadPrivacy) {
				t.Fatalf("want ErrBadPrivacy, got %v", err)
			}
			continue
		}
		p := set.Lookup([]byte("k"))
		if p == nil || p.IPMode != tc.wantMode || p.HonourSignals != tc.wantHonour {
			t.Fatalf("%q: %+v", tc.yaml, p)
		}
	}
}

// TestErrorsDoNotQuoteKeys: errors end up in logs; they name a key by a
// short prefix only.
func TestErrorsDoNotQuoteKeys(t *testing.T) {
	const secret = "4f0c2b9d8e7a6f5e"
	_, err1 := Build([]Spec{{ID: "a", Key: secret}, {ID: "b", Key: secret}})
	_, err2 := Build([]Spec{{ID: "a", Key: secret + " x"}})
	_, err3 := ParseKeys([]string{secret})
	for i, err := range []error{err1, err2, err3} {
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("error %d: %v", i, err)
		}
	}
	if got := Redact(secret); got != "4f0c…(16 bytes)" {
		t.Errorf("Redact = %q", got)
	}
}

// TestReloadKeepsBuckets: a reload does not refill rate-limit buckets of
// keys that stay.
func TestReloadKeepsBuckets(t *testing.T) {
	old, _ := Build([]Spec{{ID: "a", Keys: []string{"k1", "k2"}}})
	lim := ratelimit.New(0.001, 1)
	if !lim.Allow(&old.LookupKey([]byte("k1")).Bucket) {
		t.Fatal("first hit refused")
	}
	next, _ := Build([]Spec{{ID: "a", Keys: []string{"k1", "k3"}}})
	next.InheritBuckets(old)
	if lim.Allow(&next.LookupKey([]byte("k1")).Bucket) {
		t.Error("k1's bucket was refilled by the reload")
	}
	if !lim.Allow(&next.LookupKey([]byte("k3")).Bucket) {
		t.Error("a new key starts with a full bucket")
	}
}
