package geo

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// cityFixture describes one network of a test City database.
type cityFixture struct {
	cidr        string
	countryCode string
	country     string
	subdivs     [][2]string // iso_code, English name; first is the largest
	city        string
	postal      string
	timeZone    string
	lat, lon    float64
	radius      uint16
	noLocation  bool
}

func mmdbNames(en string) mmdbtype.Map {
	// A second language makes sure the decoder skips other names.
	return mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(en + "-de")}
}

func (f cityFixture) record() mmdbtype.Map {
	rec := mmdbtype.Map{
		"country": mmdbtype.Map{
			"iso_code":   mmdbtype.String(f.countryCode),
			"geoname_id": mmdbtype.Uint32(1),
			"names":      mmdbNames(f.country),
		},
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "names": mmdbNames("Europe")},
	}
	if f.city != "" {
		rec["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2), "names": mmdbNames(f.city)}
	}
	if f.postal != "" {
		rec["postal"] = mmdbtype.Map{"code": mmdbtype.String(f.postal)}
	}
	if !f.noLocation {
		rec["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(f.lat),
			"longitude":       mmdbtype.Float64(f.lon),
			"accuracy_radius": mmdbtype.Uint16(f.radius),
			"time_zone":       mmdbtype.String(f.timeZone),
		}
	}
	if len(f.subdivs) > 0 {
		subs := mmdbtype.Slice{}
		for _, s := range f.subdivs {
			subs = append(subs, mmdbtype.Map{"iso_code": mmdbtype.String(s[0]), "names": mmdbNames(s[1])})
		}
		rec["subdivisions"] = subs
	}
	return rec
}

// defaultCity is the fixture most tests use; the values mirror what the real
// GeoLite2 database says about MaxMind's own test network.
func defaultCity(cityName string) []cityFixture {
	return []cityFixture{
		{
			cidr: "81.2.69.0/24", countryCode: "GB", country: "United Kingdom",
			subdivs: [][2]string{{"ENG", "England"}, {"CAM", "Cambridgeshire"}},
			city:    cityName, postal: "SG19", timeZone: "Europe/London",
			lat: 52.1554, lon: -0.1918, radius: 100,
		},
		{
			cidr: "2a02:ff0::/32", countryCode: "CZ", country: "Czechia",
			subdivs: [][2]string{{"10", "Hlavni mesto Praha"}},
			city:    "Prague", timeZone: "Europe/Prague", lat: 50.0805, lon: 14.467, radius: 50,
		},
		{
			// Documentation range: only insertable with IncludeReservedNetworks.
			cidr: "192.0.2.0/24", countryCode: "US", country: "United States",
			lat: 37.751, lon: -97.822, radius: 1000, timeZone: "America/Chicago",
		},
		{
			// A record without coordinates, to check HasLocation.
			cidr: "198.51.100.0/24", countryCode: "FR", country: "France", noLocation: true,
		},
		{
			// Coordinates exactly (0, 0) are still a location.
			cidr: "203.0.113.0/24", countryCode: "GH", country: "Ghana", radius: 1000,
		},
	}
}

type asnFixture struct {
	cidr string
	asn  uint32
	org  string
}

var defaultASN = []asnFixture{
	{"81.2.69.0/24", 20712, "Andrews & Arnold Ltd"},
	{"8.8.8.0/24", 15169, "Google LLC"},
	{"2a02:ff0::/32", 5588, "T-Mobile Czech Republic a.s."},
}

func newTree(t testing.TB, dbType string) *mmdbwriter.Tree {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "pixelstream geo test fixture"},
		IncludeReservedNetworks: true,
		Languages:               []string{"en", "de"},
		RecordSize:              28,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func insert(t testing.TB, tree *mmdbwriter.Tree, cidr string, rec mmdbtype.DataType) {
	t.Helper()
	_, network, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Insert(network, rec); err != nil {
		t.Fatalf("insert %s: %v", cidr, err)
	}
}

// writeAtomically writes the tree to a temporary file in path's directory
// and renames it over path, the way geoipupdate replaces databases.
func writeAtomically(t testing.TB, tree *mmdbwriter.Tree, path string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(tmp); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

func writeCityDB(t testing.TB, path string, fixtures []cityFixture) {
	t.Helper()
	tree := newTree(t, "GeoIP2-City")
	for _, f := range fixtures {
		insert(t, tree, f.cidr, f.record())
	}
	writeAtomically(t, tree, path)
}

func writeASNDB(t testing.TB, path string, fixtures []asnFixture) {
	t.Helper()
	tree := newTree(t, "GeoLite2-ASN")
	for _, f := range fixtures {
		insert(t, tree, f.cidr, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(f.asn),
			"autonomous_system_organization": mmdbtype.String(f.org),
		})
	}
	writeAtomically(t, tree, path)
}

// fixtureDBs writes the default City and ASN databases into a temporary
// directory and returns their paths.
func fixtureDBs(t testing.TB) (cityPath, asnPath string) {
	t.Helper()
	dir := t.TempDir()
	cityPath = filepath.Join(dir, "city.mmdb")
	asnPath = filepath.Join(dir, "asn.mmdb")
	writeCityDB(t, cityPath, defaultCity("Gamlingay"))
	writeASNDB(t, asnPath, defaultASN)
	return cityPath, asnPath
}
