package visitor

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDay(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"epoch", time.Unix(0, 0), "1970-01-01"},
		{"last nanosecond of a day", time.Date(2026, 11, 26, 23, 59, 59, 999999999, time.UTC), "2026-11-26"},
		{"midnight starts the next day", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), "2026-11-27"},
		{"another zone is converted to UTC", time.Date(2026, 11, 27, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "2026-11-26"},
		{"before 1970 floors", time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), "1969-12-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DayOf(tt.at)
			if got := d.String(); got != tt.want {
				t.Fatalf("DayOf(%v) = %s, want %s", tt.at, got, tt.want)
			}
			back, err := ParseDay(tt.want)
			if err != nil || back != d {
				t.Fatalf("ParseDay(%q) = %v, %v; want %v", tt.want, back, err, d)
			}
			if !d.Start().Equal(time.Date(d.Start().Year(), d.Start().Month(), d.Start().Day(), 0, 0, 0, 0, time.UTC)) || DayOf(d.Start()) != d {
				t.Fatalf("Start of %s = %v", d, d.Start())
			}
		})
	}
	for _, bad := range []string{"", "2026-11-2", "2026-11-26T00:00:00Z", "2026-02-30", "26-11-2026", "2026-11-26 "} {
		if _, err := ParseDay(bad); err == nil {
			t.Errorf("ParseDay(%q) accepted", bad)
		}
	}
}

var (
	saltA = bytes.Repeat([]byte{0xa5}, SaltSize)
	saltB = bytes.Repeat([]byte{0x5a}, SaltSize)
	ip4   = netip.MustParseAddr("203.0.113.7")
	ua    = []byte("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	proj  = []byte("proj_1")
)

func TestSum(t *testing.T) {
	base := Sum(saltA, proj, ip4, ua)
	// A golden value: changing the hash changes every visitor id mid-day,
	// which splits every open session. Change it only on purpose.
	if got, want := base.String(), "8cdb15171291dce77a41447ec2bc6d4c"; got != want {
		t.Errorf("Sum(golden) = %s, want %s", got, want)
	}
	if len(base.String()) != HexLen {
		t.Fatalf("hex length %d", len(base.String()))
	}
	tests := []struct {
		name    string
		salt    []byte
		project []byte
		ip      netip.Addr
		ua      []byte
		same    bool
	}{
		{"identical input", saltA, proj, ip4, ua, true},
		{"IPv4-mapped IPv6 is the same address", saltA, proj, netip.MustParseAddr("::ffff:203.0.113.7"), ua, true},
		{"another salt", saltB, proj, ip4, ua, false},
		{"another project", saltA, []byte("proj_2"), ip4, ua, false},
		{"another IP", saltA, proj, netip.MustParseAddr("203.0.113.8"), ua, false},
		{"IPv6", saltA, proj, netip.MustParseAddr("2001:db8::1"), ua, false},
		{"another User-Agent", saltA, proj, ip4, append(bytes.Clone(ua), ' '), false},
		{"fields do not run together", saltA, []byte("proj_1M"), ip4, ua[1:], false},
		{"empty User-Agent", saltA, proj, ip4, nil, false},
		{"invalid IP", saltA, proj, netip.Addr{}, ua, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sum(tt.salt, tt.project, tt.ip, tt.ua)
			if (got == base) != tt.same {
				t.Fatalf("Sum = %s, base %s, want same=%v", got, base, tt.same)
			}
			if got.IsZero() {
				t.Fatal("zero id")
			}
		})
	}
}

// storeWith returns a store that never touches Kafka, holding the given
// salts: the hot path's fallbacks can be tested without a broker.
func storeWith(t *testing.T, salts map[Day][]byte) *SaltStore {
	t.Helper()
	s, err := NewSaltStore(SaltConfig{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	found := map[Day][SaltSize]byte{}
	lo := Day(1 << 40)
	for d, salt := range salts {
		found[d] = [SaltSize]byte(salt)
		lo = min(lo, d)
	}
	s.install(found, lo+1)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestIDFallbacks(t *testing.T) {
	d := DayOf(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	saltOf := func(i byte) []byte { return bytes.Repeat([]byte{i}, SaltSize) }
	held := map[Day][]byte{d - 1: saltOf(1), d: saltOf(2)}
	tests := []struct {
		name      string
		held      map[Day][]byte
		at        time.Time
		wantSalt  []byte // nil: no id
		newer     uint64
		older     uint64
		unavail   uint64
		wantPrev  []byte
		prevFound bool
	}{
		{"today", held, d.Start().Add(time.Hour), saltOf(2), 0, 0, 0, saltOf(1), true},
		{"yesterday", held, (d - 1).Start().Add(23 * time.Hour), saltOf(1), 0, 0, 0, nil, false},
		{"tomorrow not held: newest held salt", held, (d + 1).Start(), saltOf(2), 1, 0, 0, saltOf(2), true},
		{"three days ago: oldest held salt", held, (d - 3).Start(), saltOf(1), 0, 1, 0, nil, false},
		{"gap: newest older salt", map[Day][]byte{d - 1: saltOf(1), d + 1: saltOf(3)}, d.Start(), saltOf(1), 1, 0, 0, saltOf(1), true},
		{"nothing held (ID and AppendID both count)", map[Day][]byte{}, d.Start(), nil, 0, 0, 2, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storeWith(t, tt.held)
			got, ok := s.ID(proj, ip4, ua, tt.at)
			if tt.wantSalt == nil {
				if ok {
					t.Fatalf("ID = %s, want none", got)
				}
				if b, ok := s.AppendID([]byte("x"), proj, ip4, ua, tt.at); ok || string(b) != "x" {
					t.Fatalf("AppendID = %q, %v", b, ok)
				}
			} else if want := Sum(tt.wantSalt, proj, ip4, ua); !ok || got != want {
				t.Fatalf("ID = %s, %v; want %s", got, ok, want)
			}
			st := s.Stats()
			if st.NewerDayFallbacks != tt.newer || st.OlderDayFallbacks != tt.older || st.Unavailable != tt.unavail {
				t.Fatalf("stats %+v, want newer %d older %d unavailable %d", st, tt.newer, tt.older, tt.unavail)
			}
			prev, ok := s.PreviousID(proj, ip4, ua, tt.at)
			if ok != tt.prevFound || (ok && prev != Sum(tt.wantPrev, proj, ip4, ua)) {
				t.Fatalf("PreviousID = %s, %v; want found=%v", prev, ok, tt.prevFound)
			}
		})
	}
}

func TestAppendIDAllocs(t *testing.T) {
	d := DayOf(time.Now())
	s := storeWith(t, map[Day][]byte{d: saltA})
	dst := make([]byte, 0, 64)
	at := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		var ok bool
		dst, ok = s.AppendID(dst[:0], proj, ip4, ua, at)
		if !ok {
			t.Fatal("no id")
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendID allocates %.1f times per call", allocs)
	}
	if string(dst) != Sum(saltA, proj, ip4, ua).String() {
		t.Fatalf("AppendID = %s", dst)
	}
}

func TestSaltCopy(t *testing.T) {
	d := DayOf(time.Now())
	s := storeWith(t, map[Day][]byte{d: saltA})
	got, ok := s.Salt(d)
	if !ok || !bytes.Equal(got, saltA) {
		t.Fatalf("Salt = %x, %v", got, ok)
	}
	got[0] ^= 0xff // must not change the held salt
	if again, _ := s.Salt(d); !bytes.Equal(again, saltA) {
		t.Fatal("Salt returned the held salt itself, not a copy")
	}
	if _, ok := s.Salt(d - 1); ok {
		t.Fatal("Salt of a day not held")
	}
}

func BenchmarkAppendID(b *testing.B) {
	d := DayOf(time.Now())
	s, err := NewSaltStore(SaltConfig{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.install(map[Day][SaltSize]byte{d: [SaltSize]byte(saltA)}, d)
	at := time.Now()
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(ua)))
	for b.Loop() {
		dst, _ = s.AppendID(dst[:0], proj, ip4, ua, at)
	}
}

func BenchmarkPreviousID(b *testing.B) {
	d := DayOf(time.Now())
	s, err := NewSaltStore(SaltConfig{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.install(map[Day][SaltSize]byte{d - 1: [SaltSize]byte(saltB), d: [SaltSize]byte(saltA)}, d)
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.PreviousID(proj, ip4, ua, at)
	}
}

func TestCollector(t *testing.T) {
	s := storeWith(t, map[Day][]byte{DayOf(time.Now()): saltA})
	s.ID(proj, ip4, ua, time.Now().Add(48*time.Hour)) // a newer_day fallback
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s.Collector()); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(s.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	want := `# HELP pixelstream_enricher_salt_fallbacks_total Visitor ids hashed with another day's salt: newer_day (the hit's day has no salt yet) or older_day (its salt is deleted).
# TYPE pixelstream_enricher_salt_fallbacks_total counter
pixelstream_enricher_salt_fallbacks_total{reason="newer_day"} 1
pixelstream_enricher_salt_fallbacks_total{reason="older_day"} 0
# HELP pixelstream_enricher_salts_held Daily salts held in memory.
# TYPE pixelstream_enricher_salts_held gauge
pixelstream_enricher_salts_held 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"pixelstream_enricher_salt_fallbacks_total", "pixelstream_enricher_salts_held"); err != nil {
		t.Fatal(err)
	}
}
