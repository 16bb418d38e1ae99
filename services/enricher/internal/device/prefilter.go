package device

import (
	"math/bits"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"

	"github.com/ua-parser/uap-go/uaparser"
)

// An uncached uap-go parse tries its ~1,200 expressions in order until one
// matches, and Go's regexp engine needs a full scan of the string to reject
// most of them: 0.6–1.4 ms per never-seen User-Agent, which set the
// enricher's throughput on real traffic (2 % of hits carry a new string).
// Nearly every expression needs some literal text to match ("FBAV",
// "Instagram", "SM-", "iPhone"), so a prefilter that looks for that text
// first rules out almost all of them, the way uap-core's Rust port
// (regex-filtered) does: the literals of every expression go into one trie,
// one pass over the lowercased string finds those present, and an expression
// runs only if each of its required sets has one present. The expressions
// that can match are run by uap-go's own Match methods in their original
// order, so results are exactly uap-go's (TestPrefilterMatchesUAP compares
// them on 5,660 real strings, FuzzPrefilter on arbitrary ones).

// need is what a match of an expression must contain: for every set in
// sets, at least one of its strings (ASCII-lowercased). A nil need means
// nothing is known and the expression is always tried.
type need struct {
	sets [][]string
}

// minLiteral is the shortest literal worth checking. Two bytes still reject
// most strings ("LG", "GT-" after a class), and looking a literal up costs
// nothing once the trie has scanned the string, where a rejected expression
// costs microseconds.
const minLiteral = 2

// maxExact bounds the strings tracked while combining the parts of a
// concatenation ("[Ss]amsung" is 1 string lowercased; "(A|B)(C|D)" is 4).
const maxExact = 64

// maxLits bounds the alternatives in one set. uap-core's bot lists are
// single alternations of ~200 names; checking 200 bits costs nanoseconds
// where running the expression costs ~100 µs.
const maxLits = 512

// maxSets bounds the sets checked for one expression: the most selective
// few reject nearly everything the rest would.
const maxSets = 3

// needOf returns the need of a compiled expression, or nil.
func needOf(re *regexp.Regexp) *need {
	tree, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil
	}
	sets := analyze(tree.Simplify()).need()
	if len(sets) == 0 {
		return nil
	}
	return &need{sets: sets}
}

// info is what is known about the strings an expression matches, all
// ASCII-lowercased. exact, when not nil, is every string it can match;
// prefix, when not nil, is a set one of which starts every match; every
// match contains a string of each set in req. All empty means nothing is
// known, which is always a correct answer.
type info struct {
	exact  []string
	prefix []string
	req    [][]string
}

// starts returns the set one of which starts every match, or nil.
func (in info) starts() []string {
	if in.exact != nil {
		return in.exact
	}
	return in.prefix
}

// usable reports whether set is worth checking.
func usable(set []string) bool {
	return set != nil && len(set) <= maxLits && shortest(set) >= minLiteral
}

// need returns the most selective sets of in, best first, at most maxSets.
func (in info) need() [][]string {
	var out [][]string
	add := func(set []string) {
		if !usable(set) {
			return
		}
		for _, o := range out {
			if slices.Equal(o, set) {
				return
			}
		}
		out = append(out, set)
	}
	add(in.exact)
	add(in.prefix)
	for _, set := range in.req {
		add(set)
	}
	sort.SliceStable(out, func(i, j int) bool { return better(out[i], out[j]) })
	if len(out) > maxSets {
		out = out[:maxSets]
	}
	return out
}

// analyze computes the info of re.
func analyze(re *syntax.Regexp) info {
	switch re.Op {
	case syntax.OpLiteral:
		return info{exact: []string{asciiLower(string(re.Rune))}}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return info{exact: []string{""}}
	case syntax.OpCharClass:
		return info{exact: classStrings(re.Rune)}
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpQuest:
		in := analyze(re.Sub[0])
		if in.exact != nil {
			return info{exact: union(in.exact, []string{""})}
		}
		return info{}
	case syntax.OpPlus:
		in := analyze(re.Sub[0])
		return info{prefix: in.starts(), req: in.need()}
	case syntax.OpConcat:
		return concat(re.Sub)
	case syntax.OpAlternate:
		return alternate(re.Sub)
	}
	// Star, any-char and the rest: nothing known.
	return info{}
}

// alternate combines the branches of an alternation. A match matches one
// branch, so it contains the best set of that branch (and starts with one of
// its starts): the unions over the branches are required.
func alternate(subs []*syntax.Regexp) info {
	var exact, prefix, req []string
	exactOK, prefixOK, reqOK := true, true, true
	for _, sub := range subs {
		in := analyze(sub)
		if exactOK && in.exact != nil {
			exact = union(exact, in.exact)
		} else {
			exactOK = false
		}
		if st := in.starts(); prefixOK && st != nil {
			prefix = union(prefix, st)
		} else {
			prefixOK = false
		}
		if n := in.need(); reqOK && len(n) > 0 {
			req = union(req, n[0])
		} else {
			reqOK = false
		}
	}
	var out info
	if exactOK && len(exact) <= maxLits {
		out.exact = exact
	}
	if prefixOK && len(prefix) <= maxLits {
		out.prefix = prefix
	}
	if reqOK {
		out.req = [][]string{req}
	}
	return out
}

// concat combines the parts of a concatenation: runs of parts with exact
// sets multiply into longer strings, and a part without one ends the run,
// extended by what starts that part ("S" then "(eries 60|60V\d)" requires
// "series 60" or "s60v"). Every part must match, so each part's sets and
// each run are required.
func concat(subs []*syntax.Regexp) info {
	var out info
	run := []string{""}
	first := true // no part without an exact set yet
	for _, sub := range subs {
		in := analyze(sub)
		if in.exact != nil && len(run)*len(in.exact) <= maxExact {
			run = product(run, in.exact)
			continue
		}
		ext := run
		if st := in.starts(); st != nil && len(run)*len(st) <= maxLits {
			ext = product(run, st)
		}
		out.req = append(out.req, ext)
		out.req = append(out.req, in.need()...)
		if first {
			out.prefix = ext
			first = false
		}
		if in.exact != nil {
			run = in.exact
		} else {
			run = []string{""}
		}
	}
	if first {
		out.exact = run
		return out
	}
	out.req = append(out.req, run)
	return out
}

// classStrings returns the lowercased one-byte strings of a character class
// of a few ASCII characters ("[Ss]" is "s"), or nil.
func classStrings(ranges []rune) []string {
	var out []string
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if hi > 0x7f || hi-lo > 8 {
			return nil
		}
		for r := lo; r <= hi; r++ {
			out = union(out, []string{asciiLower(string(r))})
			if len(out) > 4 {
				return nil
			}
		}
	}
	return out
}

func product(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = union(out, []string{x + y})
		}
	}
	return out
}

// union appends the strings of b that a lacks.
func union(a, b []string) []string {
	for _, s := range b {
		found := false
		for _, t := range a {
			if s == t {
				found = true
				break
			}
		}
		if !found {
			a = append(a, s)
		}
	}
	return a
}

// samples are common User-Agents. A literal set that most of them contain
// ("mozilla", "android", " build") rejects nothing in real traffic however
// long its strings are, so sets are ranked by how many samples they admit.
var samples = []string{
	"mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) chrome/131.0.0.0 safari/537.36",
	"mozilla/5.0 (macintosh; intel mac os x 10_15_7) applewebkit/605.1.15 (khtml, like gecko) version/17.6 safari/605.1.15",
	"mozilla/5.0 (iphone; cpu iphone os 17_6_1 like mac os x) applewebkit/605.1.15 (khtml, like gecko) version/17.6 mobile/15e148 safari/604.1",
	"mozilla/5.0 (linux; android 10; k) applewebkit/537.36 (khtml, like gecko) chrome/131.0.0.0 mobile safari/537.36",
	"mozilla/5.0 (linux; android 13; sm-s918b build/tp1a.220624.014; wv) applewebkit/537.36 (khtml, like gecko) version/4.0 chrome/120.0.6099.230 mobile safari/537.36",
	"mozilla/5.0 (windows nt 10.0; win64; x64; rv:133.0) gecko/20100101 firefox/133.0",
	"mozilla/5.0 (x11; linux x86_64) applewebkit/537.36 (khtml, like gecko) chrome/131.0.0.0 safari/537.36 edg/131.0.0.0",
	"mozilla/5.0 (ipad; cpu os 17_6 like mac os x) applewebkit/605.1.15 (khtml, like gecko) crios/131.0.6778.73 mobile/15e148 safari/604.1",
}

// admitted returns how many samples contain a string of set.
func admitted(set []string) int {
	n := 0
	for _, s := range samples {
		if containsAny(s, set) {
			n++
		}
	}
	return n
}

// better reports whether literal set a is more selective than b: fewer
// samples admitted, then a longer shortest string, then fewer strings.
func better(a, b []string) bool {
	if sa, sb := admitted(a), admitted(b); sa != sb {
		return sa < sb
	}
	if ma, mb := shortest(a), shortest(b); ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func shortest(lits []string) int {
	n := -1
	for _, l := range lits {
		if n < 0 || len(l) < n {
			n = len(l)
		}
	}
	return n
}

func containsAny(s string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// asciiLower lowercases ASCII letters only. Lines with other bytes are never
// prefiltered (Go's case folding maps e.g. U+212A KELVIN SIGN to "k"), so
// ASCII is all that matters.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// compiledNeed is a need with its literals replaced by their ids in the
// filter's literal index.
type compiledNeed struct {
	sets [][]int32
}

// admits reports whether a line whose present literals are found may match.
func (n *compiledNeed) admits(found []uint64) bool {
	if n == nil {
		return true
	}
	for _, set := range n.sets {
		hit := false
		for _, id := range set {
			if found[id>>6]&(1<<(id&63)) != 0 {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// filtered runs a uap-go parser's expressions behind the prefilter. The
// needs are indexed like the parser's expression lists, which filtered never
// reorders (uap-go's UseSort must stay off).
type filtered struct {
	uap            *uaparser.Parser
	lits           *trie
	ua, os, device list
}

// list is the prefilter of one expression list (user agent, OS, device).
// Checking every expression's need against the literals found cost a fifth
// of a parse, for ~1,200 expressions of which a handful can match; the
// index turns the literals found into the candidates instead.
type list struct {
	needs []*compiledNeed
	// always marks (bit i = expression i) those with no need.
	always []uint64
	// byLit lists, per literal id, the expressions whose first required
	// set holds that literal: an expression can only match if one of
	// them is present, so the union over the literals found holds every
	// expression that can match (the rest of its need is checked after).
	byLit [][]int32
}

func newFiltered(uap *uaparser.Parser) *filtered {
	f := &filtered{uap: uap, lits: newTrie()}
	compile := func(re *regexp.Regexp) *compiledNeed {
		n := needOf(re)
		if n == nil {
			return nil
		}
		c := &compiledNeed{}
		for _, set := range n.sets {
			ids := make([]int32, 0, len(set))
			for _, l := range set {
				ids = append(ids, f.lits.add(l))
			}
			c.sets = append(c.sets, ids)
		}
		return c
	}
	for _, p := range uap.UA {
		f.ua.needs = append(f.ua.needs, compile(p.Reg))
	}
	for _, p := range uap.OS {
		f.os.needs = append(f.os.needs, compile(p.Reg))
	}
	for _, p := range uap.Device {
		f.device.needs = append(f.device.needs, compile(p.Reg))
	}
	for _, l := range []*list{&f.ua, &f.os, &f.device} {
		l.index(int(f.lits.count))
	}
	return f
}

// index builds always and byLit from needs, for literal ids below lits.
func (l *list) index(lits int) {
	l.always = make([]uint64, (len(l.needs)+63)/64)
	l.byLit = make([][]int32, lits)
	for i, n := range l.needs {
		if n == nil || len(n.sets) == 0 {
			l.always[i>>6] |= 1 << (i & 63)
			continue
		}
		for _, id := range n.sets[0] {
			// A set may name a literal twice; one entry is enough.
			if k := len(l.byLit[id]); k == 0 || l.byLit[id][k-1] != int32(i) {
				l.byLit[id] = append(l.byLit[id], int32(i))
			}
		}
	}
}

// candidates sets in dst (bit i = expression i) every expression whose
// need the literals found may satisfy, or every expression if found is nil.
func (l *list) candidates(found, dst []uint64) []uint64 {
	dst = append(dst[:0], l.always...)
	if found == nil {
		for i := range l.needs {
			dst[i>>6] |= 1 << (i & 63)
		}
		return dst
	}
	for w, word := range found {
		for word != 0 {
			id := w<<6 + bits.TrailingZeros64(word)
			word &= word - 1
			for _, i := range l.byLit[id] {
				dst[i>>6] |= 1 << (i & 63)
			}
		}
	}
	return dst
}

// parse returns what uap-go's ParseUserAgent, ParseOs and ParseDevice return
// for line, without their caches.
func (f *filtered) parse(line string) (*uaparser.UserAgent, *uaparser.Os, *uaparser.Device) {
	var found []uint64 // nil: not prefiltered, every expression is tried
	if isASCII(line) {
		found = make([]uint64, (f.lits.count+63)/64)
		f.lits.scan(asciiLower(line), found)
	}
	var cand []uint64
	ua := new(uaparser.UserAgent)
	cand = firstMatch(f.uap.UA, &f.ua, found, cand, line, ua, func(u *uaparser.UserAgent) *string { return &u.Family })
	os := new(uaparser.Os)
	cand = firstMatch(f.uap.OS, &f.os, found, cand, line, os, func(o *uaparser.Os) *string { return &o.Family })
	d := new(uaparser.Device)
	firstMatch(f.uap.Device, &f.device, found, cand, line, d, func(d *uaparser.Device) *string { return &d.Family })
	return ua, os, d
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// matcher is uap-go's expression type of one list (user agent, OS, device).
type matcher[T any] interface{ Match(line string, out *T) }

// firstMatch does what uap-go's ParseUserAgent, ParseOs and ParseDevice do
// without their caches: the expressions are tried in order until one gives
// a family ("Other" if none does), except that those the prefilter rules
// out are skipped. cand is scratch for the candidate set, returned for
// reuse.
func firstMatch[T any, M matcher[T]](pats []M, l *list, found, cand []uint64,
	line string, out *T, family func(*T) *string) []uint64 {
	cand = l.candidates(found, cand)
	for w, word := range cand {
		for word != 0 {
			i := w<<6 + bits.TrailingZeros64(word)
			word &= word - 1
			if found != nil && !l.needs[i].admits(found) {
				continue
			}
			if pats[i].Match(line, out); *family(out) != "" {
				return cand
			}
		}
	}
	*family(out) = "Other"
	return cand
}
