package clientip

import (
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	p, err := ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func values(vs ...string) [][]byte {
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = []byte(v)
	}
	return out
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means not ok
	}{
		{"192.0.2.1", "192.0.2.1"},
		{"  192.0.2.1\t", "192.0.2.1"},
		{"192.0.2.1:8080", "192.0.2.1"},
		{"192.0.2.1:", ""},
		{"192.0.2.1:123456", ""},
		{"192.0.2.1:65535", "192.0.2.1"},
		{"192.0.2.1:70000", ""}, // beyond the port range (fuzz finding)
		{"[2001:db8::1]:99999", ""},
		{"192.0.2.1:80a", ""},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[2001:db8::1]443", ""},
		{"[2001:db8::1", ""},
		{"[192.0.2.1]", ""},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1"},
		{"fe80::1%eth0", ""},
		{"unknown", ""},
		{"", ""},
		{"1.2.3", ""},
		{"256.1.1.1", ""},
		{"01.2.3.4", ""},
		{"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{strings.Repeat("1", 46), ""},
		{"_gateway", ""},
	}
	for _, tt := range tests {
		got, ok := ParseAddr([]byte(tt.in))
		if tt.want == "" {
			if ok {
				t.Errorf("ParseAddr(%q) = %v, want failure", tt.in, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tt.want) {
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	lb := mustPrefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.7")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no trusted proxies: peer even with xff", nil, "10.0.0.1", []string{"203.0.113.9"}, "10.0.0.1"},
		{"untrusted peer: xff ignored", lb, "198.51.100.1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted peer, one hop", lb, "10.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"trusted peer, no xff", lb, "10.0.0.1", nil, "10.0.0.1"},
		{"spoofed left-most entry ignored", lb, "10.0.0.1", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted hops", lb, "10.0.0.1", []string{"1.1.1.1, 203.0.113.9, 10.1.1.1, 192.0.2.7"}, "203.0.113.9"},
		{"multiple headers walked from the last", lb, "10.0.0.1", []string{"1.1.1.1, 203.0.113.9", "10.2.2.2"}, "203.0.113.9"},
		{"all trusted: left-most", lb, "10.0.0.1", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"all trusted across headers: left-most", lb, "10.0.0.1", []string{"10.9.9.9", "10.1.1.1"}, "10.9.9.9"},
		{"garbage stops the walk: last good", lb, "10.0.0.1", []string{"203.0.113.9, unknown, 10.3.3.3"}, "10.3.3.3"},
		{"garbage right away: peer", lb, "10.0.0.1", []string{"203.0.113.9, unknown"}, "10.0.0.1"},
		{"empty elements skipped", lb, "10.0.0.1", []string{"203.0.113.9,, ,", ""}, "203.0.113.9"},
		{"ports and brackets", lb, "10.0.0.1", []string{"[2001:db8:1::5]:5555, 10.1.1.1:80"}, "2001:db8:1::5"},
		{"mapped peer is unmapped before the trust check", lb, "::ffff:10.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"mapped client is unmapped", lb, "10.0.0.1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"mapped untrusted peer returned unmapped", lb, "::ffff:198.51.100.1", nil, "198.51.100.1"},
		{"trusted IPv6 proxy", lb, "2001:db8:ffff::1", []string{"2001:db8:1::5"}, "2001:db8:1::5"},
		{"single-address trust entry", lb, "192.0.2.7", []string{"198.51.100.2"}, "198.51.100.2"},
		{"neighbour of single address not trusted", lb, "192.0.2.8", []string{"198.51.100.2"}, "192.0.2.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.trusted)
			got := r.ClientIP(netip.MustParseAddr(tt.peer), values(tt.xff...))
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
}

func TestMappedTrustPrefix(t *testing.T) {
	r := New(mustPrefixes(t, "::ffff:10.0.0.0/104"))
	if !r.Trusted(netip.MustParseAddr("10.200.0.1")) {
		t.Fatal("::ffff:10.0.0.0/104 should trust 10.200.0.1")
	}
}

func TestParsePrefixes(t *testing.T) {
	p, err := ParsePrefixes([]string{"10.1.2.3/8", "192.0.2.7", "2001:db8::/32", "::ffff:192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "192.0.2.9/32"}
	for i, w := range want {
		if p[i].String() != w {
			t.Errorf("prefix %d = %v, want %s", i, p[i], w)
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error("10.0.0.0/33 accepted")
	}
	if _, err := ParsePrefixes([]string{"lb.internal"}); err == nil {
		t.Error("host name accepted")
	}
}

// FuzzXFF checks the resolver never panics, only ever answers with the peer
// or an address that literally appears in the header, and agrees with a
// straightforward (allocating) reference implementation.
func FuzzXFF(f *testing.F) {
	for _, s := range []string{
		"203.0.113.9",
		"1.1.1.1, 203.0.113.9, 10.1.1.1",
		"unknown, 10.1.1.1",
		"[2001:db8::1]:443, 10.0.0.2:80",
		",,, ,",
		"::ffff:10.0.0.1",
		"fe80::1%eth0, 10.0.0.3",
		"[", "]:", ":1", "1.2.3.4:", "[::1]x",
		"10.0.0.1\t,\t203.0.113.1",
	} {
		f.Add(s, "10.9.9.9")
	}
	trusted := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")})
	peer := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, h1, h2 string) {
		got := trusted.ClientIP(peer, [][]byte{[]byte(h1), []byte(h2)})
		want := referenceClientIP(trusted, peer, []string{h1, h2})
		if got != want {
			t.Fatalf("ClientIP(%q, %q) = %v, reference says %v", h1, h2, got, want)
		}
		if got != peer && !appearsIn(got, h1, h2) {
			t.Fatalf("ClientIP(%q, %q) = %v, which is neither the peer nor in the header", h1, h2, got)
		}
		// ParseAddr must agree with netip on anything it accepts.
		for _, s := range []string{h1, h2} {
			if a, ok := ParseAddr([]byte(s)); ok {
				if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
					t.Fatalf("ParseAddr(%q) = %v: invalid, mapped or zoned", s, a)
				}
			}
		}
	})
}

func appearsIn(a netip.Addr, hs ...string) bool {
	for _, h := range hs {
		for _, e := range strings.Split(h, ",") {
			if b, ok := ParseAddr([]byte(e)); ok && b == a {
				return true
			}
		}
	}
	return false
}

// referenceClientIP is the resolver's rule written the obvious way.
func referenceClientIP(r *Resolver, peer netip.Addr, xff []string) netip.Addr {
	if !r.Trusted(peer) {
		return peer.Unmap()
	}
	var elems []string
	for _, v := range xff {
		for _, e := range strings.Split(v, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				elems = append(elems, e)
			}
		}
	}
	last := peer.Unmap()
	for i := len(elems) - 1; i >= 0; i-- {
		a, ok := referenceParse(elems[i])
		if !ok {
			return last
		}
		if !r.Trusted(a) {
			return a
		}
		last = a
	}
	return last
}

func referenceParse(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if a := ap.Addr(); a.Zone() == "" && !(a.Is4() && strings.HasPrefix(s, "[")) {
			return a.Unmap(), true
		}
		return netip.Addr{}, false
	}
	inner := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner = s[1 : len(s)-1]
	} else if strings.Count(s, ":") == 1 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || a.Zone() != "" || (inner != s && !a.Is6()) {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func BenchmarkClientIP(b *testing.B) {
	r := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12")})
	peer := netip.MustParseAddr("10.0.0.1")
	cases := map[string][][]byte{
		"ipv4-two-hops": values("198.51.100.23, 203.0.113.9, 10.1.1.1"),
		"ipv6-port":     values("[2001:db8:1::5]:5555, 10.1.1.1:80"),
		"untrusted":     nil,
	}
	for name, xff := range cases {
		b.Run(name, func(b *testing.B) {
			p := peer
			if xff == nil {
				p = netip.MustParseAddr("198.51.100.1")
			}
			b.ReportAllocs()
			var sink netip.Addr
			for b.Loop() {
				sink = r.ClientIP(p, xff)
			}
			if !sink.IsValid() {
				b.Fatal("no address")
			}
		})
	}
}

func BenchmarkParseAddr(b *testing.B) {
	for _, s := range []string{"203.0.113.9", "[2001:db8:1::5]:5555", "unknown"} {
		in := []byte(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ParseAddr(in)
			}
		})
	}
}

// TestParseAddrDoesNotAllocate covers addresses and the garbage real
// proxies put in the header ("unknown", host names). Only input made of
// address characters that still fails to parse ("1.2.3.4.5") costs the one
// allocation of netip's error value.
func TestParseAddrDoesNotAllocate(t *testing.T) {
	in := [][]byte{[]byte("203.0.113.9"), []byte("[2001:db8::1]:1"), []byte("unknown"), []byte("lb-7.internal"), []byte("")}
	n := testing.AllocsPerRun(100, func() {
		for _, b := range in {
			ParseAddr(b)
		}
	})
	if n != 0 {
		t.Fatalf("ParseAddr allocates %v times per run", n)
	}
}
