// Package geo resolves client IP addresses to a location (and optionally an
// autonomous system) with MaxMind DB files such as GeoLite2/GeoIP2 City and
// ASN, or DB-IP City Lite.
//
// A Resolver is safe for concurrent use. Its databases can be replaced while
// it serves lookups (Reload, Watch): MaxMind publishes new databases weekly,
// and a restart for every refresh is what Snowplow users complain about.
//
// Replace database files by renaming a complete new file over the old path
// (geoipupdate does this). Rewriting a file in place while it is memory-mapped
// can show half-written data to lookups or crash the process with SIGBUS if
// the file shrinks; that is a property of mmap, not something this package
// can prevent.
package geo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Result is the location (and autonomous system) found for one IP address.
// Text fields are English names; empty means the database has no value.
type Result struct {
	CountryCode string  // ISO 3166-1 alpha-2, e.g. "GB"
	Country     string  // English country name
	RegionCode  string  // ISO 3166-2 subdivision code without the country prefix, e.g. "ENG"
	Region      string  // English name of the first (largest) subdivision
	City        string  // English city name
	PostalCode  string  // postal code as stored (often only a prefix)
	TimeZone    string  // IANA time zone, e.g. "Europe/London"
	Latitude    float64 // degrees, approximate; see AccuracyRadiusKm
	Longitude   float64 // degrees, approximate
	// AccuracyRadiusKm is MaxMind's radius around Latitude/Longitude in which
	// the address is likely to be; country-level records have large radii.
	AccuracyRadiusKm uint16
	// HasLocation reports whether the record carried coordinates, so that a
	// genuine (0, 0) is distinguishable from "no coordinates".
	HasLocation bool
	ASN         uint32 // autonomous system number; 0 when unknown or no ASN database
	ASOrg       string // autonomous system organization
}

// ErrClosed is returned by Reload after Close.
var ErrClosed = errors.New("geo: resolver closed")

// names holds only the English entry of a MaxMind "names" map; the decoder
// skips the other languages without allocating.
type names struct {
	EN string `maxminddb:"en"`
}

type subdivision struct {
	ISOCode string `maxminddb:"iso_code"`
	Names   names  `maxminddb:"names"`
}

// cityRecord is the subset of the GeoIP2/GeoLite2 City record we use. Decoding
// into a small typed struct costs about a microsecond and nothing on the heap
// when the struct is reused; decoding into any costs ~17 µs and ~100 allocs.
type cityRecord struct {
	City struct {
		Names names `maxminddb:"names"`
	} `maxminddb:"city"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   names  `maxminddb:"names"`
	} `maxminddb:"country"`
	Location struct {
		// Pointers would allocate; coordinates are tracked through the
		// accuracy radius and a non-zero check instead (see fill).
		Latitude       float64 `maxminddb:"latitude"`
		Longitude      float64 `maxminddb:"longitude"`
		AccuracyRadius uint16  `maxminddb:"accuracy_radius"`
		TimeZone       string  `maxminddb:"time_zone"`
	} `maxminddb:"location"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	Subdivisions []subdivision `maxminddb:"subdivisions"`
}

// reset zeroes the record but keeps the Subdivisions capacity: the decoder
// only writes fields present in the data, and it reuses a slice that is large
// enough instead of allocating a new one.
func (c *cityRecord) reset() {
	subs := c.Subdivisions[:0]
	*c = cityRecord{}
	c.Subdivisions = subs
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// scratch holds the decode targets of one lookup.
type scratch struct {
	city cityRecord
	asn  asnRecord
}

// scratches pools decode targets: Decode takes an interface, so a pointer to
// a per-call local escapes and would be a heap allocation on every lookup.
var scratches = sync.Pool{New: func() any { return new(scratch) }}

// generation is one set of open databases. It is reference counted so that
// a reload can close the replaced readers exactly when the last lookup that
// started on them has finished: maxminddb's Close unmaps the file and must
// never run beside a lookup.
type generation struct {
	city, asn *maxminddb.Reader
	// Decoded records by data-section offset. Offsets are only meaningful
	// for one file, so the caches live and die with the generation.
	cityCache recordCache[Result]
	asnCache  recordCache[asnRecord]
	// refs counts the resolver's own reference (1 while current) plus one
	// per in-flight lookup. It never rises again after reaching zero.
	refs atomic.Int64
	// stats of the files as opened, for Watch to detect replacement.
	cityStat, asnStat os.FileInfo
}

// acquire takes a lookup reference unless the generation is already being
// closed (refs reached zero), in which case the caller must reload the
// current pointer: it has been swapped by then.
func (g *generation) acquire() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and closes the readers when it was the last.
func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		g.close()
	}
}

func (g *generation) close() {
	if g.city != nil {
		_ = g.city.Close() // unmapping a mapping we own cannot usefully fail
	}
	if g.asn != nil {
		_ = g.asn.Close()
	}
}

// Resolver looks up IP addresses in a City database and, optionally, an ASN
// database. The zero value is not usable; call Open. A nil *Resolver is
// valid for Lookup and always reports "not found", so callers can run
// without geo data without branching.
type Resolver struct {
	cityPath, asnPath string

	cur atomic.Pointer[generation]

	// mu serializes Reload and Close so two reloads cannot both swap and
	// release the same old generation twice.
	mu     sync.Mutex
	closed bool
}

// Open memory-maps the City database at cityPath and, when asnPath is not
// empty, the ASN database at asnPath, and returns a Resolver using them.
func Open(cityPath, asnPath string) (*Resolver, error) {
	if cityPath == "" {
		return nil, errors.New("geo: city database path is empty")
	}
	g, err := openGeneration(cityPath, asnPath)
	if err != nil {
		return nil, err
	}
	r := &Resolver{cityPath: cityPath, asnPath: asnPath}
	r.cur.Store(g)
	return r, nil
}

func openGeneration(cityPath, asnPath string) (*generation, error) {
	g := &generation{}
	var err error
	// Stat before opening: if the file is replaced between the two calls we
	// record the older stat and Watch reloads once more, never once less.
	if g.cityStat, err = os.Stat(cityPath); err != nil {
		return nil, fmt.Errorf("geo: city database: %w", err)
	}
	if g.city, err = maxminddb.Open(cityPath); err != nil {
		return nil, fmt.Errorf("geo: open city database %s: %w", cityPath, err)
	}
	if asnPath != "" {
		if g.asnStat, err = os.Stat(asnPath); err != nil {
			g.close()
			return nil, fmt.Errorf("geo: ASN database: %w", err)
		}
		if g.asn, err = maxminddb.Open(asnPath); err != nil {
			g.close()
			return nil, fmt.Errorf("geo: open ASN database %s: %w", asnPath, err)
		}
	}
	g.refs.Store(1)
	return g, nil
}

// acquire returns the current generation with a lookup reference held, or
// nil when the resolver is closed.
func (r *Resolver) acquire() *generation {
	for {
		g := r.cur.Load()
		if g == nil || g.acquire() {
			return g
		}
		// g lost its last reference between Load and acquire, which only
		// happens after a swap: the next Load sees the replacement.
	}
}

// Lookup fills out with what the databases know about ip and reports whether
// anything was found. When nothing is found, the resolver is closed or nil,
// ip is invalid, or a record cannot be decoded, out is zeroed and Lookup
// returns false. IPv4-mapped IPv6 addresses are looked up as IPv4.
//
// Strings in out are copies (never views of the mapped file) and stay valid
// after a reload or Close.
func (r *Resolver) Lookup(ip netip.Addr, out *Result) bool {
	*out = Result{}
	if r == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	g := r.acquire()
	if g == nil {
		return false
	}
	defer g.release()

	found := false
	if res := g.city.Lookup(ip); res.Found() {
		if cached := g.cityCache.get(res.Offset()); cached != nil {
			*out = *cached
			found = true
		} else if g.decodeCity(res, out) {
			found = true
		}
	}
	if g.asn != nil {
		if res := g.asn.Lookup(ip); res.Found() {
			if cached := g.asnCache.get(res.Offset()); cached != nil {
				out.ASN, out.ASOrg = cached.Number, cached.Org
				found = true
			} else if a, ok := g.decodeASN(res); ok {
				out.ASN, out.ASOrg = a.Number, a.Org
				found = true
			}
		}
	}
	return found
}

// decodeCity decodes a City record into out's location fields and caches
// them. A decode error means a corrupt record: it is reported as not found
// rather than half-filled.
func (g *generation) decodeCity(res maxminddb.Result, out *Result) bool {
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	s.city.reset()
	if res.Decode(&s.city) != nil {
		return false
	}
	s.city.fill(out)
	g.cityCache.put(res.Offset(), *out)
	return true
}

func (g *generation) decodeASN(res maxminddb.Result) (asnRecord, bool) {
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	s.asn = asnRecord{}
	if res.Decode(&s.asn) != nil {
		return asnRecord{}, false
	}
	g.asnCache.put(res.Offset(), s.asn)
	return s.asn, true
}

func (c *cityRecord) fill(out *Result) {
	out.CountryCode = c.Country.ISOCode
	out.Country = c.Country.Names.EN
	if len(c.Subdivisions) > 0 {
		// The first subdivision is the largest (e.g. England before a
		// county); it is what Snowplow and GA report as the region.
		out.RegionCode = c.Subdivisions[0].ISOCode
		out.Region = c.Subdivisions[0].Names.EN
	}
	out.City = c.City.Names.EN
	out.PostalCode = c.Postal.Code
	out.TimeZone = c.Location.TimeZone
	out.Latitude = c.Location.Latitude
	out.Longitude = c.Location.Longitude
	out.AccuracyRadiusKm = c.Location.AccuracyRadius
	// MaxMind always writes accuracy_radius with coordinates; the non-zero
	// test covers databases (DB-IP, custom) that omit it.
	out.HasLocation = c.Location.AccuracyRadius != 0 ||
		c.Location.Latitude != 0 || c.Location.Longitude != 0
}

// Reload opens the database files again (the same paths given to Open) and
// switches lookups to them. The replaced databases are closed as soon as the
// last lookup already running on them returns. On error the current
// databases stay in use.
func (r *Resolver) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	g, err := openGeneration(r.cityPath, r.asnPath)
	if err != nil {
		return err
	}
	if old := r.cur.Swap(g); old != nil {
		old.release()
	}
	return nil
}

// Close stops lookups (they return false from now on) and closes the
// databases once lookups in flight have finished. It is idempotent.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if old := r.cur.Swap(nil); old != nil {
		old.release()
	}
	return nil
}

// BuildTimes returns the build dates recorded in the current databases (zero
// for a database that is not configured), for an "age of geo data" metric.
func (r *Resolver) BuildTimes() (city, asn time.Time) {
	g := r.acquire()
	if g == nil {
		return time.Time{}, time.Time{}
	}
	defer g.release()
	city = g.city.Metadata.BuildTime()
	if g.asn != nil {
		asn = g.asn.Metadata.BuildTime()
	}
	return city, asn
}

// Watch polls the database files every interval and calls Reload when either
// file's size, modification time or identity (inode) differs from the file
// that is loaded. Polling, unlike inotify, also sees a file renamed over the
// watched path and works on every filesystem. log, if not nil, is called
// with a message and nil after a reload, and with the error when a check or
// reload fails (the old databases stay in use and the next tick retries).
// Watch returns when ctx is done or the resolver is closed, and at once
// when interval is not positive (watching disabled).
func (r *Resolver) Watch(ctx context.Context, interval time.Duration, log func(msg string, err error)) {
	if interval <= 0 {
		return // time.NewTicker would panic
	}
	if log == nil {
		log = func(string, error) {}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.changed()
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			// Typically the file is missing mid-replace; keep serving.
			log("geo: checking database files", err)
			continue
		}
		if !changed {
			continue
		}
		switch err := r.Reload(); {
		case errors.Is(err, ErrClosed):
			return
		case err != nil:
			log("geo: reloading databases", err)
		default:
			log("geo: databases reloaded", nil)
		}
	}
}

// changed reports whether a database file differs from the loaded one.
func (r *Resolver) changed() (bool, error) {
	g := r.acquire()
	if g == nil {
		return false, ErrClosed
	}
	defer g.release()
	if c, err := fileChanged(r.cityPath, g.cityStat); c || err != nil {
		return c, err
	}
	if r.asnPath == "" {
		return false, nil
	}
	return fileChanged(r.asnPath, g.asnStat)
}

func fileChanged(path string, loaded os.FileInfo) (bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return !os.SameFile(st, loaded) || st.Size() != loaded.Size() ||
		!st.ModTime().Equal(loaded.ModTime()), nil
}
