package pixel

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestPageHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://shop.example.com/products/1?utm_source=x", "shop.example.com"},
		{"https://shop.example.com", "shop.example.com"},
		{"https://shop.example.com:8443/", "shop.example.com"},
		{"http://user:pw@shop.example.com/", "shop.example.com"},
		{"https://Shop.Example.COM/", "Shop.Example.COM"},
		{"https://[2001:db8::1]:443/x", "2001:db8::1"},
		{"https://[2001:db8::1/x", ""},
		{"//shop.example.com/x", "shop.example.com"},
		{"android-app://com.google.android.gm/", "com.google.android.gm"},
		{"https://shop.example.com?x", "shop.example.com"},
		{"https://shop.example.com#frag", "shop.example.com"},
		{"https://shop.example.com\\@evil.com/", "shop.example.com"},
		{"https://evil.com#@shop.example.com", "evil.com"},
		{"shop.example.com/x", ""},
		{"/relative/path", ""},
		{"", ""},
		{"https://", ""},
		{"https://:443/", ""},
		{"1http://x.com/", ""},
		{"ht tp://x.com/", ""},
	}
	for _, tt := range tests {
		if got := string(PageHost([]byte(tt.in))); got != tt.want {
			t.Errorf("PageHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var plainURL = regexp.MustCompile(`^https?://([a-z0-9-]+\.)*[a-z0-9-]+(:[0-9]{1,5})?(/[a-zA-Z0-9/._~-]*)?$`)

// FuzzPageHost: no panics, the answer is a part of the input free of URL
// delimiters, and on plain http(s) URLs it agrees with net/url.
func FuzzPageHost(f *testing.F) {
	for _, s := range []string{"https://shop.example.com/x", "http://a@b:1/", "//x", "https://[::1]:80/", "a://b", "https://x.com\\y", "::::", "[", "https://["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := PageHost([]byte(s))
		if h == nil {
			return
		}
		if len(h) == 0 || !bytes.Contains([]byte(s), h) {
			t.Fatalf("PageHost(%q) = %q: not a non-empty part of the input", s, h)
		}
		if bytes.ContainsAny(h, "/?#@\\") {
			t.Fatalf("PageHost(%q) = %q: contains a delimiter", s, h)
		}
		if plainURL.MatchString(s) {
			u, err := url.Parse(s)
			if err == nil && !strings.EqualFold(u.Hostname(), string(h)) {
				t.Fatalf("PageHost(%q) = %q, net/url says %q", s, h, u.Hostname())
			}
		}
	})
}
