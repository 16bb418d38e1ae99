package pixel

import (
	"strings"
	"testing"
)

func TestSpeculative(t *testing.T) {
	tests := []struct {
		secPurpose, purpose, xMoz, xPurpose string
		want                                bool
	}{
		{"", "", "", "", false},
		{"prefetch", "", "", "", true},
		{"prefetch;prerender", "", "", "", true},
		{"prefetch;anonymous-client-ip", "", "", "", true},
		{" Prefetch ", "", "", "", true},
		{"foo, prefetch", "", "", "", true},
		{"prefetcher", "", "", "", false},
		{"prerender", "", "", "", false},
		{"x;prefetch", "", "", "", false}, // a parameter named prefetch is not the token
		{"", "prefetch", "", "", true},
		{"", "", "prefetch", "", true},
		{"", "", "PREFETCH", "", true},
		{"", "", "", "preview", true},
		{"", "", "", "prefetch", true},
		{"", "", "", "instant", false},
		{"", "preview", "", "", false},
	}
	for _, tt := range tests {
		got := Speculative([]byte(tt.secPurpose), []byte(tt.purpose), []byte(tt.xMoz), []byte(tt.xPurpose))
		if got != tt.want {
			t.Errorf("Speculative(%q, %q, %q, %q) = %v, want %v", tt.secPurpose, tt.purpose, tt.xMoz, tt.xPurpose, got, tt.want)
		}
	}
}

// FuzzPrefetchTokens checks the token scanner against the obvious
// implementation built on strings.Split.
func FuzzPrefetchTokens(f *testing.F) {
	for _, s := range []string{"prefetch", "prefetch;prerender", "a, prefetch ;x=1", ",,;", "PREFETCH\t", "pre fetch", "preview"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := hasToken([]byte(v), tokPrefetch, nil)
		want := false
		for _, item := range strings.Split(v, ",") {
			tok, _, _ := strings.Cut(item, ";")
			if strings.EqualFold(strings.Trim(tok, " \t"), "prefetch") && isASCII(tok) {
				want = true
			}
		}
		if got != want {
			t.Fatalf("hasToken(%q) = %v, reference %v", v, got, want)
		}
	})
}

// isASCII excludes the Unicode case folds strings.EqualFold knows and HTTP
// tokens cannot contain (the Kelvin sign folds to 'k').
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
