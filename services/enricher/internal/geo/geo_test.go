package geo

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// junk is what out holds before a lookup, so tests see that Lookup zeroes
// fields it does not set.
var junk = Result{
	CountryCode: "XX", Country: "junk", RegionCode: "J", Region: "junk", City: "junk",
	PostalCode: "0", TimeZone: "junk", Latitude: 1, Longitude: 1, AccuracyRadiusKm: 1,
	HasLocation: true, ASN: 1, ASOrg: "junk",
}

func TestLookup(t *testing.T) {
	cityPath, asnPath := fixtureDBs(t)
	r, err := Open(cityPath, asnPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })

	gamlingay := Result{
		CountryCode: "GB", Country: "United Kingdom", RegionCode: "ENG", Region: "England",
		City: "Gamlingay", PostalCode: "SG19", TimeZone: "Europe/London",
		Latitude: 52.1554, Longitude: -0.1918, AccuracyRadiusKm: 100, HasLocation: true,
		ASN: 20712, ASOrg: "Andrews & Arnold Ltd",
	}
	tests := []struct {
		name  string
		ip    netip.Addr
		found bool
		want  Result
	}{
		{"ipv4 city with ASN", netip.MustParseAddr("81.2.69.142"), true, gamlingay},
		{"ipv4-mapped ipv6 is looked up as ipv4", netip.MustParseAddr("::ffff:81.2.69.142"), true, gamlingay},
		{"ipv6 prefix", netip.MustParseAddr("2a02:ff0:1:2::3"), true, Result{
			CountryCode: "CZ", Country: "Czechia", RegionCode: "10", Region: "Hlavni mesto Praha",
			City: "Prague", TimeZone: "Europe/Prague", Latitude: 50.0805, Longitude: 14.467,
			AccuracyRadiusKm: 50, HasLocation: true, ASN: 5588, ASOrg: "T-Mobile Czech Republic a.s.",
		}},
		{"country-level record, reserved range", netip.MustParseAddr("192.0.2.7"), true, Result{
			CountryCode: "US", Country: "United States", TimeZone: "America/Chicago",
			Latitude: 37.751, Longitude: -97.822, AccuracyRadiusKm: 1000, HasLocation: true,
		}},
		{"record without coordinates", netip.MustParseAddr("198.51.100.1"), true, Result{
			CountryCode: "FR", Country: "France",
		}},
		{"coordinates (0,0) are a location", netip.MustParseAddr("203.0.113.9"), true, Result{
			CountryCode: "GH", Country: "Ghana", AccuracyRadiusKm: 1000, HasLocation: true,
		}},
		{"ASN only", netip.MustParseAddr("8.8.8.8"), true, Result{ASN: 15169, ASOrg: "Google LLC"}},
		{"not found", netip.MustParseAddr("10.1.2.3"), false, Result{}},
		{"not found ipv6", netip.MustParseAddr("2001:db8::1"), false, Result{}},
		{"zone is ignored", netip.MustParseAddr("2a02:ff0::1%eth0"), true, Result{
			CountryCode: "CZ", Country: "Czechia", RegionCode: "10", Region: "Hlavni mesto Praha",
			City: "Prague", TimeZone: "Europe/Prague", Latitude: 50.0805, Longitude: 14.467,
			AccuracyRadiusKm: 50, HasLocation: true, ASN: 5588, ASOrg: "T-Mobile Czech Republic a.s.",
		}},
		{"invalid address", netip.Addr{}, false, Result{}},
	}
	// The second pass is served from the decoded-record caches; the third
	// decodes the records again after the caches are emptied.
	for _, pass := range []string{"decoded", "cached", "decoded-again"} {
		if pass == "decoded-again" {
			g := r.cur.Load()
			for i := range g.cityCache.slots {
				g.cityCache.slots[i].Store(nil)
				g.asnCache.slots[i].Store(nil)
			}
		}
		for _, tt := range tests {
			t.Run(pass+"/"+tt.name, func(t *testing.T) {
				out := junk
				if got := r.Lookup(tt.ip, &out); got != tt.found {
					t.Fatalf("Lookup(%v) = %v, want %v", tt.ip, got, tt.found)
				}
				if out != tt.want {
					t.Fatalf("Lookup(%v):\n got %+v\nwant %+v", tt.ip, out, tt.want)
				}
			})
		}
	}
}

func TestRecordCacheCollisions(t *testing.T) {
	var c recordCache[string]
	// Find two offsets sharing a slot.
	a := uintptr(1000)
	b := a + 1
	for slot(b) != slot(a) {
		b++
	}
	if c.get(a) != nil {
		t.Fatal("empty cache hit")
	}
	c.put(a, "a")
	if v := c.get(a); v == nil || *v != "a" {
		t.Fatalf("get(a) = %v", v)
	}
	if c.get(b) != nil {
		t.Fatal("colliding offset returned another record")
	}
	c.put(b, "b")
	if c.get(a) != nil {
		t.Fatal("replaced entry still returned")
	}
	if v := c.get(b); v == nil || *v != "b" {
		t.Fatalf("get(b) = %v", v)
	}
}

// TestCacheIsPerGeneration makes sure a reload never serves records decoded
// from the previous file: offsets are only meaningful within one file.
func TestCacheIsPerGeneration(t *testing.T) {
	cityPath, asnPath := fixtureDBs(t)
	r, err := Open(cityPath, asnPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ip := netip.MustParseAddr("81.2.69.142")
	var out Result
	r.Lookup(ip, &out) // fills the cache
	oldOffset := r.cur.Load().city.Lookup(ip).Offset()
	// A name of the same length keeps the layout, so the record sits at the
	// same offset in both files: exactly the case a shared cache would get
	// wrong.
	writeCityDB(t, cityPath, defaultCity("Eynesbury"))
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if off := r.cur.Load().city.Lookup(ip).Offset(); off != oldOffset {
		t.Fatalf("fixture layout changed (offset %d -> %d); the test needs equal offsets", oldOffset, off)
	}
	if r.Lookup(ip, &out); out.City != "Eynesbury" {
		t.Fatalf("after reload got city %q", out.City)
	}
}

func TestLookupWithoutASNDatabase(t *testing.T) {
	cityPath, _ := fixtureDBs(t)
	r, err := Open(cityPath, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := junk
	if !r.Lookup(netip.MustParseAddr("81.2.69.142"), &out) {
		t.Fatal("not found")
	}
	if out.ASN != 0 || out.ASOrg != "" || out.City != "Gamlingay" {
		t.Fatalf("got %+v", out)
	}
	if r.Lookup(netip.MustParseAddr("8.8.8.8"), &out) || out != (Result{}) {
		t.Fatalf("8.8.8.8 without ASN db: got %+v", out)
	}
}

func TestOpenErrors(t *testing.T) {
	cityPath, asnPath := fixtureDBs(t)
	garbage := filepath.Join(t.TempDir(), "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("this is not a MaxMind DB"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.mmdb")
	tests := []struct {
		name, city, asn string
	}{
		{"empty city path", "", asnPath},
		{"missing city", missing, ""},
		{"garbage city", garbage, ""},
		{"empty city file", empty, ""},
		{"missing asn", cityPath, missing},
		{"garbage asn", cityPath, garbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.city, tt.asn)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestNilAndClosedResolver(t *testing.T) {
	var nilR *Resolver
	out := junk
	if nilR.Lookup(netip.MustParseAddr("81.2.69.142"), &out) || out != (Result{}) {
		t.Fatalf("nil resolver: %+v", out)
	}

	cityPath, asnPath := fixtureDBs(t)
	r, err := Open(cityPath, asnPath)
	if err != nil {
		t.Fatal(err)
	}
	g := r.cur.Load()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	out = junk
	if r.Lookup(netip.MustParseAddr("81.2.69.142"), &out) || out != (Result{}) {
		t.Fatalf("closed resolver: %+v", out)
	}
	if err := r.Reload(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Close = %v, want ErrClosed", err)
	}
	if n := g.refs.Load(); n != 0 {
		t.Fatalf("generation refs after Close = %d", n)
	}
	// The reader itself must have been closed, not just dropped.
	if err := g.city.Lookup(netip.MustParseAddr("81.2.69.142")).Err(); err == nil {
		t.Fatal("city reader still open after Close")
	}
	if c, a := r.BuildTimes(); !c.IsZero() || !a.IsZero() {
		t.Fatal("BuildTimes after Close not zero")
	}
}

func TestBuildTimes(t *testing.T) {
	before := time.Now().Add(-time.Minute)
	cityPath, asnPath := fixtureDBs(t)
	r, err := Open(cityPath, asnPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, a := r.BuildTimes()
	if c.Before(before) || a.Before(before) {
		t.Fatalf("build times %v %v older than the test", c, a)
	}
	r2, err := Open(cityPath, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, a := r2.BuildTimes(); !a.IsZero() {
		t.Fatal("ASN build time without ASN database")
	}
}

// TestReloadUnderConcurrentLookups swaps the database files repeatedly while
// four goroutines look up continuously. Run with -race: every lookup must
// succeed and see one complete version, and each replaced generation must
// end up closed.
func TestReloadUnderConcurrentLookups(t *testing.T) {
	cityPath, asnPath := fixtureDBs(t)
	r, err := Open(cityPath, asnPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	ip := netip.MustParseAddr("81.2.69.142")
	var (
		stop     atomic.Bool
		lookups  atomic.Int64
		failures atomic.Int64
		sawNew   atomic.Bool
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			var out Result
			for !stop.Load() {
				lookups.Add(1)
				if !r.Lookup(ip, &out) || out.ASN != 20712 {
					failures.Add(1)
					continue
				}
				switch out.City {
				case "Gamlingay":
				case "Newtown":
					sawNew.Store(true)
				default:
					failures.Add(1)
				}
			}
		})
	}

	var old []*generation
	const swaps = 20
	for i := range swaps {
		name := "Gamlingay"
		if i%2 == 0 {
			name = "Newtown"
		}
		writeCityDB(t, cityPath, defaultCity(name))
		old = append(old, r.cur.Load())
		if err := r.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond) // let lookups run on each generation
	}
	// The last swap installed "Gamlingay"; wait for one more lookup cycle.
	for start := lookups.Load(); lookups.Load() < start+100; {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d lookups failed during reloads", n, lookups.Load())
	}
	if !sawNew.Load() {
		t.Fatal("no lookup saw a reloaded database")
	}
	t.Logf("%d lookups across %d reloads", lookups.Load(), swaps)
	for i, g := range old {
		if n := g.refs.Load(); n != 0 {
			t.Errorf("replaced generation %d still has %d references", i, n)
		}
		if g.city.Lookup(ip).Err() == nil {
			t.Errorf("replaced generation %d was not closed", i)
		}
	}
}

func TestWatch(t *testing.T) {
	cityPath, asnPath := fixtureDBs(t)
	r, err := Open(cityPath, asnPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	type logEntry struct {
		msg string
		err error
	}
	logs := make(chan logEntry, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(ctx, 5*time.Millisecond, func(msg string, err error) { logs <- logEntry{msg, err} })
	}()

	waitLog := func(wantErr bool) logEntry {
		t.Helper()
		select {
		case e := <-logs:
			if (e.err != nil) != wantErr {
				t.Fatalf("log %q %v, want error: %v", e.msg, e.err, wantErr)
			}
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not log")
		}
		return logEntry{}
	}

	city := func() string {
		var out Result
		r.Lookup(netip.MustParseAddr("81.2.69.142"), &out)
		return out.City
	}

	// Nothing changes: no reload.
	time.Sleep(30 * time.Millisecond)
	select {
	case e := <-logs:
		t.Fatalf("unexpected log without a change: %q %v", e.msg, e.err)
	default:
	}

	// A City file renamed over the old one is picked up.
	writeCityDB(t, cityPath, defaultCity("Newtown"))
	waitLog(false)
	if got := city(); got != "Newtown" {
		t.Fatalf("after city reload: city %q", got)
	}

	// An ASN change alone also reloads.
	writeASNDB(t, asnPath, []asnFixture{{"81.2.69.0/24", 64500, "Example AS"}})
	waitLog(false)
	var out Result
	r.Lookup(netip.MustParseAddr("81.2.69.142"), &out)
	if out.ASN != 64500 {
		t.Fatalf("after ASN reload: %+v", out)
	}

	// A broken file is reported and the old data keeps being served.
	if err := os.WriteFile(cityPath+".bad", []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cityPath+".bad", cityPath); err != nil {
		t.Fatal(err)
	}
	waitLog(true)
	if got := city(); got != "Newtown" {
		t.Fatalf("after failed reload: city %q", got)
	}
	// ...and once fixed, the next tick loads it.
	writeCityDB(t, cityPath, defaultCity("Gamlingay"))
	for {
		if e := waitLog(false); e.err == nil {
			break
		}
	}
	if got := city(); got != "Gamlingay" {
		t.Fatalf("after recovery: city %q", got)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestWatchDisabled(t *testing.T) {
	cityPath, _ := fixtureDBs(t)
	r, err := Open(cityPath, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, interval := range []time.Duration{0, -time.Second} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Watch(context.Background(), interval, nil)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Watch(%v) did not return", interval)
		}
	}
}

func TestWatchReturnsAfterClose(t *testing.T) {
	cityPath, _ := fixtureDBs(t)
	r, err := Open(cityPath, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(context.Background(), time.Millisecond, nil)
	}()
	time.Sleep(5 * time.Millisecond)
	r.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after Close")
	}
}

// TestRealGeoLite2City checks the decoder against a real GeoLite2 City
// database, whose layout a hand-made fixture can only imitate. It runs when
// GEOIP_CITY_DB names the file and is mandatory in CI.
func TestRealGeoLite2City(t *testing.T) {
	path := os.Getenv("GEOIP_CITY_DB")
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GEOIP_CITY_DB must point to a GeoLite2-City.mmdb in CI")
		}
		t.Skip("GEOIP_CITY_DB not set")
	}
	r, err := Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		ip                          string
		country, regionCode, city   string
		wantRegion, wantLoc, wantTZ bool
	}{
		{"81.2.69.142", "GB", "ENG", "Gamlingay", true, true, true},
		{"83.208.93.244", "CZ", "", "Prague", true, true, true},
		{"8.8.8.8", "US", "", "", false, true, true},
		{"2001:4860:4860::8888", "US", "", "", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			var out Result
			if !r.Lookup(netip.MustParseAddr(tt.ip), &out) {
				t.Fatal("not found")
			}
			t.Logf("%+v", out)
			if out.CountryCode != tt.country || out.Country == "" {
				t.Errorf("country %q %q, want %q", out.CountryCode, out.Country, tt.country)
			}
			if tt.regionCode != "" && out.RegionCode != tt.regionCode {
				t.Errorf("region code %q, want %q", out.RegionCode, tt.regionCode)
			}
			if tt.wantRegion && (out.Region == "" || out.RegionCode == "") {
				t.Errorf("region missing: %+v", out)
			}
			if tt.city != "" && out.City != tt.city {
				t.Errorf("city %q, want %q", out.City, tt.city)
			}
			if tt.wantLoc && (!out.HasLocation || out.AccuracyRadiusKm == 0) {
				t.Errorf("no location: %+v", out)
			}
			if tt.wantTZ && out.TimeZone == "" {
				t.Errorf("no time zone: %+v", out)
			}
		})
	}
	var out Result
	if r.Lookup(netip.MustParseAddr("10.0.0.1"), &out) {
		t.Errorf("private address found: %+v", out)
	}
}

func benchResolver(b *testing.B) *Resolver {
	cityPath, asnPath := fixtureDBs(b)
	r, err := Open(cityPath, asnPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	return r
}

func BenchmarkLookup(b *testing.B) {
	r := benchResolver(b)
	ip := netip.MustParseAddr("81.2.69.142")
	var out Result
	b.ReportAllocs()
	for b.Loop() {
		if !r.Lookup(ip, &out) {
			b.Fatal("not found")
		}
	}
}

// BenchmarkLookupCacheMiss measures a lookup whose record must be decoded,
// the cost of the first visitor from a place.
func BenchmarkLookupCacheMiss(b *testing.B) {
	r := benchResolver(b)
	ip := netip.MustParseAddr("81.2.69.142")
	g := r.cur.Load()
	cityOff := g.city.Lookup(ip).Offset()
	asnOff := g.asn.Lookup(ip).Offset()
	var out Result
	b.ReportAllocs()
	for b.Loop() {
		g.cityCache.slots[slot(cityOff)].Store(nil)
		g.asnCache.slots[slot(asnOff)].Store(nil)
		if !r.Lookup(ip, &out) {
			b.Fatal("not found")
		}
	}
}

func BenchmarkLookupNotFound(b *testing.B) {
	r := benchResolver(b)
	ip := netip.MustParseAddr("10.1.2.3")
	var out Result
	b.ReportAllocs()
	for b.Loop() {
		r.Lookup(ip, &out)
	}
}

// BenchmarkLookupParallel shows the cost of the shared reference count when
// every core looks up at once.
func BenchmarkLookupParallel(b *testing.B) {
	r := benchResolver(b)
	ip := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var out Result
		for pb.Next() {
			r.Lookup(ip, &out)
		}
	})
}

// realCity opens GEOIP_CITY_DB, or skips the benchmark without it.
func realCity(b *testing.B) *Resolver {
	path := os.Getenv("GEOIP_CITY_DB")
	if path == "" {
		b.Skip("GEOIP_CITY_DB not set")
	}
	r, err := Open(path, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	return r
}

// BenchmarkLookupRealCityVisitors runs against GEOIP_CITY_DB with many
// addresses: "repeat" cycles through 20,000 (returning visitors: their
// records stay in the decoded-record cache), "new" through 2,000,000
// (first visits, mostly records not decoded yet).
func BenchmarkLookupRealCityVisitors(b *testing.B) {
	r := realCity(b)
	rnd := rand.New(rand.NewPCG(1, 2))
	ips := make([]netip.Addr, 2_000_000)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{byte(1 + rnd.IntN(222)), byte(rnd.IntN(256)), byte(rnd.IntN(256)), byte(rnd.IntN(256))})
	}
	for _, bc := range []struct {
		name string
		n    int
	}{{"repeat", 20_000}, {"new", len(ips)}} {
		b.Run(bc.name, func(b *testing.B) {
			var out Result
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.Lookup(ips[i%bc.n], &out)
				i++
			}
		})
	}
}

// BenchmarkLookupRealCity runs against GEOIP_CITY_DB, whose deeper tree and
// real record layout are what production sees.
func BenchmarkLookupRealCity(b *testing.B) {
	r := realCity(b)
	ips := []netip.Addr{
		netip.MustParseAddr("81.2.69.142"),
		netip.MustParseAddr("83.208.93.244"),
		netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("2001:4860:4860::8888"),
	}
	var out Result
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Lookup(ips[i%len(ips)], &out)
		i++
	}
}
