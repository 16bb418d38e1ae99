// Package projects maps API keys to the projects they belong to and decides
// which page hosts a project accepts hits from.
//
// A Set is immutable once built; the Registry swaps whole Sets atomically
// when the projects file changes, so the request path reads one pointer and
// one map and never takes a lock.
package projects

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"gopkg.in/yaml.v3"

	"github.com/pixelstream/pixelstream/services/edge/internal/ratelimit"
)

// Project is one tracked site: its id and the page hosts it accepts hits
// from. It is read-only once its Set is built.
type Project struct {
	// ID is the project id written into every hit.
	ID string
	// IPMode ("full", "truncate", "drop"; empty: the enricher's default)
	// and HonourSignals (withhold DNT/GPC hits downstream) are copied into
	// every hit, so the enricher applies the policy in force at collection.
	IPMode        string
	HonourSignals bool
	// exact holds allowed hosts; wild holds the ".example.com" suffixes of
	// "*.example.com" entries. Both empty means every host is allowed.
	exact map[string]struct{}
	wild  map[string]struct{}
}

// maxHostLen bounds the host names AllowsHost compares; DNS names are at
// most 253 bytes, so anything longer cannot be on an allow list.
const maxHostLen = 253

// AllowsHost reports whether a hit whose page is on host may be recorded
// for p. An empty host (no page URL and no Referer, as with email opens) is
// allowed, as is any host when the project lists no allowed hosts. The
// comparison ignores ASCII case and a trailing dot. It does not allocate.
func (p *Project) AllowsHost(host []byte) bool {
	if len(p.exact) == 0 && len(p.wild) == 0 {
		return true
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if len(host) == 0 {
		return true
	}
	if len(host) > maxHostLen {
		return false
	}
	var buf [maxHostLen]byte
	h := buf[:len(host)]
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h[i] = c
	}
	if _, ok := p.exact[string(h)]; ok {
		return true
	}
	for i, c := range h {
		if c == '.' {
			if _, ok := p.wild[string(h[i:])]; ok {
				return true
			}
		}
	}
	return false
}

// RestrictsHosts reports whether p has an allow list at all; without one
// every page host is allowed and the handler need not find the page host.
func (p *Project) RestrictsHosts() bool { return len(p.exact) > 0 || len(p.wild) > 0 }

// AllowedHosts returns the allow list as configured, sorted (for logs and
// tests).
func (p *Project) AllowedHosts() []string {
	out := make([]string, 0, len(p.exact)+len(p.wild))
	for h := range p.exact {
		out = append(out, h)
	}
	for s := range p.wild {
		out = append(out, "*"+s)
	}
	sort.Strings(out)
	return out
}

// Set is an immutable key → project table.
type Set struct {
	byKey    map[string]*Key
	projects int
}

// Key is one API key of a project, with the key's rate-limit bucket.
type Key struct {
	Project *Project
	Bucket  ratelimit.Bucket
}

// Lookup returns the project owning key, or nil. It does not allocate.
func (s *Set) Lookup(key []byte) *Project {
	if k := s.LookupKey(key); k != nil {
		return k.Project
	}
	return nil
}

// LookupKey returns key's entry, or nil. It does not allocate.
func (s *Set) LookupKey(key []byte) *Key {
	if s == nil {
		return nil
	}
	return s.byKey[string(key)]
}

// InheritBuckets copies the rate-limit state of the keys s shares with
// old, so a reload does not refill every bucket.
func (s *Set) InheritBuckets(old *Set) {
	if s == nil || old == nil {
		return
	}
	for k, e := range s.byKey {
		if o, ok := old.byKey[k]; ok {
			e.Bucket.CopyFrom(&o.Bucket)
		}
	}
}

// Redact shortens an API key for logs and error messages: keys appear in
// pages and are not secret, but a full key in a log is a key anyone with
// the logs can use. It keeps a prefix long enough to find the key in the
// projects file.
func Redact(key string) string {
	n := min(4, len(key)/3)
	return key[:n] + "…(" + strconv.Itoa(len(key)) + " bytes)"
}

// Projects returns how many projects s holds.
func (s *Set) Projects() int { return s.projects }

// Keys returns how many API keys s holds.
func (s *Set) Keys() int { return len(s.byKey) }

// Spec is one project as written in a projects file or on the command
// line.
type Spec struct {
	ID           string   `yaml:"id" json:"id"`
	Key          string   `yaml:"key,omitempty" json:"key,omitempty"`
	Keys         []string `yaml:"keys,omitempty" json:"keys,omitempty"`
	AllowedHosts []string `yaml:"allowed_hosts,omitempty" json:"allowed_hosts,omitempty"`
	// IPMode is how the enricher writes the client IP: "full", "truncate"
	// (IPv4 /24, IPv6 /48) or "drop"; empty leaves it to the enricher's
	// -default-ip-mode (truncate).
	IPMode string `yaml:"ip_mode,omitempty" json:"ip_mode,omitempty"`
	// PrivacySignals is "record" (default: DNT and Sec-GPC are recorded as
	// fields) or "honour" (such hits are counted but not published
	// downstream).
	PrivacySignals string `yaml:"privacy_signals,omitempty" json:"privacy_signals,omitempty"`
}

// File is the layout of a projects file.
type File struct {
	Projects []Spec `yaml:"projects" json:"projects"`
}

// Errors returned while building a Set; they are wrapped with the offending
// project or key.
var (
	ErrNoID         = errors.New("project without id")
	ErrNoKeys       = errors.New("project without keys")
	ErrBadKey       = errors.New("invalid API key")
	ErrDuplicateKey = errors.New("API key used twice")
	ErrDuplicateID  = errors.New("project id used twice")
	ErrBadHost      = errors.New("invalid allowed host")
	ErrBadPrivacy   = errors.New(`invalid privacy setting: ip_mode is full, truncate or drop; privacy_signals is record or honour`)
)

// ParseFile decodes a projects file. A name ending in .json is read as
// strict JSON; anything else as YAML. Unknown fields are errors, so a typo
// such as "allowed_host" does not silently allow every host.
func ParseFile(name string, data []byte) ([]Spec, error) {
	var f File
	if strings.EqualFold(filepath.Ext(name), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("projects file %s: %w", name, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("projects file %s: trailing data after the JSON document", name)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("projects file %s: %w", name, err)
		}
	}
	return f.Projects, nil
}

// ParseKeys parses the command-line form "key=project,key2=project2" (already
// split on commas) into one Spec per project.
func ParseKeys(entries []string) ([]Spec, error) {
	byID := map[string]int{}
	var out []Spec
	for _, e := range entries {
		key, id, ok := strings.Cut(e, "=")
		key, id = strings.TrimSpace(key), strings.TrimSpace(id)
		if !ok || key == "" || id == "" {
			return nil, fmt.Errorf("%w: %s: want key=project-id", ErrBadKey, Redact(e))
		}
		if i, seen := byID[id]; seen {
			out[i].Keys = append(out[i].Keys, key)
			continue
		}
		byID[id] = len(out)
		out = append(out, Spec{ID: id, Keys: []string{key}})
	}
	return out, nil
}

// Build validates specs and returns the Set they describe. Keys must be
// unique across all specs, project ids unique, and allowed hosts plain host
// names ("shop.example.com") or wildcards ("*.example.com").
func Build(specs ...[]Spec) (*Set, error) {
	s := &Set{byKey: map[string]*Key{}}
	ids := map[string]bool{}
	for _, group := range specs {
		for _, sp := range group {
			p, keys, err := newProject(sp)
			if err != nil {
				return nil, err
			}
			if ids[p.ID] {
				return nil, fmt.Errorf("%w: %q", ErrDuplicateID, p.ID)
			}
			ids[p.ID] = true
			s.projects++
			for _, k := range keys {
				if other, dup := s.byKey[k]; dup {
					return nil, fmt.Errorf("%w: %s (projects %q and %q)", ErrDuplicateKey, Redact(k), other.Project.ID, p.ID)
				}
				s.byKey[k] = &Key{Project: p}
			}
		}
	}
	return s, nil
}

func newProject(sp Spec) (*Project, []string, error) {
	id := strings.TrimSpace(sp.ID)
	if id == "" {
		return nil, nil, ErrNoID
	}
	var keys []string
	if sp.Key != "" {
		keys = append(keys, sp.Key)
	}
	keys = append(keys, sp.Keys...)
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("%w: %q", ErrNoKeys, id)
	}
	for _, k := range keys {
		if !validKey(k) {
			return nil, nil, fmt.Errorf("%w: %s in project %q: want 1-256 visible ASCII characters", ErrBadKey, Redact(k), id)
		}
	}
	p := &Project{ID: id, IPMode: sp.IPMode}
	if sp.IPMode != "" && !hit.ValidIPMode(sp.IPMode) {
		return nil, nil, fmt.Errorf("%w: ip_mode %q in project %q", ErrBadPrivacy, sp.IPMode, id)
	}
	switch sp.PrivacySignals {
	case "", "record":
	case "honour", "honor":
		p.HonourSignals = true
	default:
		return nil, nil, fmt.Errorf("%w: privacy_signals %q in project %q", ErrBadPrivacy, sp.PrivacySignals, id)
	}
	for _, h := range sp.AllowedHosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		wild := strings.HasPrefix(h, "*.")
		name := strings.TrimPrefix(h, "*.")
		if !validHost(name) {
			return nil, nil, fmt.Errorf("%w: %q in project %q: want a host name like shop.example.com or *.example.com", ErrBadHost, h, id)
		}
		if wild {
			if p.wild == nil {
				p.wild = map[string]struct{}{}
			}
			p.wild["."+name] = struct{}{}
		} else {
			if p.exact == nil {
				p.exact = map[string]struct{}{}
			}
			p.exact[name] = struct{}{}
		}
	}
	return p, keys, nil
}

// validKey accepts what can travel unescaped-or-escaped in a query string
// and be compared byte for byte: visible ASCII, no spaces.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > 256 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts lower-case host names and IP literals: no scheme, path,
// port or spaces, which are the usual mistakes ("https://shop.example.com/").
func validHost(h string) bool {
	if h == "" || len(h) > maxHostLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return !strings.HasPrefix(h, ".") && !strings.Contains(h, "..")
}
