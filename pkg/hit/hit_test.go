package hit

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

func sample() *Raw {
	return &Raw{
		SchemaVersion:  SchemaVersion,
		EventID:        NewEventID(time.Date(2026, 11, 26, 20, 0, 0, 123456789, time.UTC).UnixNano()),
		ReceivedAtNs:   time.Date(2026, 11, 26, 20, 0, 0, 123456789, time.UTC).UnixNano(),
		APIKey:         []byte("demo"),
		ProjectID:      []byte("demo-project"),
		ClientIP:       netip.MustParseAddr("81.2.69.142"),
		UserAgent:      []byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
		Referer:        []byte("https://shop.example/"),
		Host:           []byte("t.shop.example"),
		Query:          []byte("key=demo&url=https%3A%2F%2Fshop.example%2Fp%3Fgclid%3Dabc&utm_source=google"),
		AcceptLanguage: []byte("en-GB,en;q=0.9"),
		DNT:            true,
		GPC:            true,
		Prefetch:       true,
		Hints:          ClientHints{UA: []byte(`"Chromium";v="120"`), Mobile: []byte("?0"), Platform: []byte(`"Windows"`)},
		EdgeInstance:   []byte("edge-1"),
		Method:         []byte("GET"),
		IPMode:         []byte("truncate"),
		HonourSignals:  true,
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   *Raw
	}{
		{"full", sample()},
		{"empty", &Raw{}},
		{"ipv6", func() *Raw { r := sample(); r.ClientIP = netip.MustParseAddr("2001:db8::1"); return r }()},
		{"no hints", func() *Raw { r := sample(); r.Hints = ClientHints{}; return r }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.in.AppendProto(nil)
			var got Raw
			if err := got.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if !equal(&got, tc.in) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, *tc.in)
			}
		})
	}
}

// equal compares records treating nil and empty slices alike.
func equal(a, b *Raw) bool {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var eq func(x, y reflect.Value) bool
	eq = func(x, y reflect.Value) bool {
		switch x.Kind() {
		case reflect.Slice:
			return bytes.Equal(x.Bytes(), y.Bytes())
		case reflect.Struct:
			if x.Type() == reflect.TypeOf(netip.Addr{}) {
				return x.Interface() == y.Interface()
			}
			for i := range x.NumField() {
				if !eq(x.Field(i), y.Field(i)) {
					return false
				}
			}
			return true
		default:
			return reflect.DeepEqual(x.Interface(), y.Interface())
		}
	}
	return eq(va, vb)
}

// The hand-written codec must agree with the official protobuf runtime
// reading proto/pixelstream/v1/hit.proto, in both directions.
func TestMatchesProtoSchema(t *testing.T) {
	md := rawHitDescriptor(t)
	in := sample()
	msg := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(in.AppendProto(nil), msg); err != nil {
		t.Fatalf("protobuf runtime cannot read our encoding: %v", err)
	}
	get := func(name string) protoreflect.Value { return msg.Get(md.Fields().ByName(protoreflect.Name(name))) }
	if got := get("user_agent").String(); got != string(in.UserAgent) {
		t.Errorf("user_agent = %q", got)
	}
	if got := get("received_at_ns").Int(); got != in.ReceivedAtNs {
		t.Errorf("received_at_ns = %d", got)
	}
	if got := get("event_id").Bytes(); !bytes.Equal(got, in.EventID[:]) {
		t.Errorf("event_id = %x", got)
	}
	if got := get("client_ip").Bytes(); !bytes.Equal(got, []byte{81, 2, 69, 142}) {
		t.Errorf("client_ip = %v", got)
	}
	if got := get("ip_mode").String(); got != "truncate" || !get("honour_privacy_signals").Bool() {
		t.Errorf("privacy policy = %q %v", got, get("honour_privacy_signals").Bool())
	}
	if !get("gpc").Bool() || !get("prefetch").Bool() {
		t.Error("bools lost")
	}
	hints := get("client_hints").Message()
	if got := hints.Get(hints.Descriptor().Fields().ByName("platform")).String(); got != `"Windows"` {
		t.Errorf("client_hints.platform = %q", got)
	}
	// And back: the runtime's encoding decodes to the same record.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var back Raw
	if err := back.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if !equal(&back, in) {
		t.Fatalf("decoding the runtime's bytes differs:\n got %+v\nwant %+v", back, *in)
	}
}

func rawHitDescriptor(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	root, err := filepath.Abs("../../proto")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "pixelstream/v1/hit.proto")); err != nil {
		t.Fatal(err)
	}
	c := protocompile.Compiler{Resolver: &protocompile.SourceResolver{ImportPaths: []string{root}}}
	files, err := c.Compile(context.Background(), "pixelstream/v1/hit.proto")
	if err != nil {
		t.Fatal(err)
	}
	return files[0].Messages().ByName("RawHit")
}

func TestUnmarshalRejectsMalformed(t *testing.T) {
	good := sample().AppendProto(nil)
	tests := []struct {
		name string
		in   []byte
	}{
		{"truncated", good[:len(good)-5]},
		{"bad tag", []byte{0x00}},
		{"short event id", []byte{0x12, 0x02, 1, 2}},
		{"bad ip length", []byte{0x32, 0x03, 1, 2, 3}},
		{"wrong wire type", []byte{0x3d, 1, 2, 3, 4}}, // field 7 as fixed32
		{"text", []byte("hello, world: not a protobuf")},
	}
	for _, tc := range tests {
		var r Raw
		if err := r.Unmarshal(tc.in); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// Unknown fields from a newer edge are skipped, not errors.
	withUnknown := append(append([]byte(nil), good...), 0xa0, 0x06, 0x01) // field 100 varint
	var r Raw
	if err := r.Unmarshal(withUnknown); err != nil {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestEventIDs(t *testing.T) {
	now := time.Now().UnixNano()
	seen := map[EventID]bool{}
	prev := EventID{}
	for i := range 10000 {
		id := NewEventID(now + int64(i)*1000)
		if seen[id] {
			t.Fatal("duplicate id")
		}
		seen[id] = true
		if id[6]>>4 != 7 || id[8]>>6 != 2 {
			t.Fatalf("not a UUIDv7: %s", id)
		}
		if i > 0 && bytes.Compare(id[:6], prev[:6]) < 0 {
			t.Fatal("ids not time-ordered")
		}
		prev = id
		if id.UnixMilli() != (now+int64(i)*1000)/1e6 {
			t.Fatal("timestamp lost")
		}
	}
	id := NewEventID(now)
	back, err := ParseEventID(id.String())
	if err != nil || back != id {
		t.Fatalf("parse(%s) = %s, %v", id, back, err)
	}
	if _, err := ParseEventID("not-an-id"); err == nil {
		t.Fatal("bad id parsed")
	}
}

func TestVisitorKey(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.9")
	k1 := AppendVisitorKey(nil, []byte("p"), ip, []byte("ua"))
	if len(k1) != VisitorKeySize {
		t.Fatalf("len %d", len(k1))
	}
	if string(k1) != string(AppendVisitorKey(nil, []byte("p"), ip, []byte("ua"))) {
		t.Fatal("not stable")
	}
	for _, other := range [][]byte{
		AppendVisitorKey(nil, []byte("q"), ip, []byte("ua")),
		AppendVisitorKey(nil, []byte("p"), netip.MustParseAddr("203.0.113.10"), []byte("ua")),
		AppendVisitorKey(nil, []byte("p"), ip, []byte("ub")),
		AppendVisitorKey(nil, []byte("pu"), ip, []byte("a")),
	} {
		if string(other) == string(k1) {
			t.Fatal("different visitors share a key")
		}
	}
	// The key decides the partition: edges of two versions must agree on
	// it, so a change of algorithm shows here (XXH64 of the bytes below).
	a16 := ip.As16()
	want := xxhash.Sum64(append(append([]byte{1, 0, 0, 0, 'p'}, a16[:]...), "ua"...))
	if got := string(k1); got != fmt.Sprintf("%016x", want) {
		t.Fatalf("key %s, want %016x", got, want)
	}
	if got := string(AppendVisitorKey(nil, []byte("shop"), netip.MustParseAddr("2001:db8::1"), []byte("Mozilla/5.0"))); got != "46d4fb2802cac69f" {
		t.Fatalf("golden key %s", got)
	}
}

func BenchmarkAppendVisitorKey(b *testing.B) {
	ua := []byte("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
	ip := netip.MustParseAddr("203.0.113.9")
	buf := make([]byte, 0, VisitorKeySize)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendVisitorKey(buf[:0], []byte("shop"), ip, ua)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(sample().AppendProto(nil))
	f.Add((&Raw{}).AppendProto(nil))
	f.Add([]byte{0x7a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Raw
		if err := r.Unmarshal(b); err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same record.
		var again Raw
		if err := again.Unmarshal(r.AppendProto(nil)); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !equal(&r, &again) {
			t.Fatalf("unstable round trip")
		}
	})
}

func BenchmarkAppendProto(b *testing.B) {
	r := sample()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendProto(buf[:0])
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	in := sample().AppendProto(nil)
	var r Raw
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Unmarshal(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewEventID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewEventID(1764187200123456789)
	}
}
