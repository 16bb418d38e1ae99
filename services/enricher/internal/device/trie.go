package device

import "sync"

// trie finds, in one pass over a line, every literal of the prefilter that
// occurs in it. The literals of uap-core's ~1,200 expressions number in the
// thousands, and checking each with strings.Contains cost more than the
// expressions it saved; overlapping matches are needed (every literal
// present, not a leftmost non-overlapping subset), which the Go
// Aho-Corasick modules on the proxy either lack or ship unmaintained. A
// line is ~150 bytes and the walk from each position stops within a few
// bytes, so a plain trie walked from every position suffices.
type trie struct {
	nodes []trieNode
	root  [128]int32 // child of the root per first byte; 0 = none
	ids   map[string]int32
	count int32

	once   sync.Once
	frozen frozenTrie
}

type trieNode struct {
	labels []byte
	kids   []int32
	out    int32 // id+1 of the literal ending here, 0 = none
}

func newTrie() *trie {
	return &trie{nodes: make([]trieNode, 1), ids: map[string]int32{}}
}

// add inserts lit and returns its id. The same literal gets the same id.
func (t *trie) add(lit string) int32 {
	if t.nodes == nil {
		panic("device: trie.add after scan")
	}
	if id, ok := t.ids[lit]; ok {
		return id
	}
	id := t.count
	t.count++
	t.ids[lit] = id
	// Literals holding non-ASCII bytes can never occur in the lines
	// scanned (only ASCII lines are prefiltered), so they stay unfound.
	for i := 0; i < len(lit); i++ {
		if lit[i] >= 0x80 {
			return id
		}
	}
	n := int32(0)
	for i := 0; i < len(lit); i++ {
		n = t.child(n, lit[i], true)
	}
	t.nodes[n].out = id + 1
	return id
}

func (t *trie) child(n int32, c byte, create bool) int32 {
	if n == 0 {
		if k := t.root[c]; k != 0 || !create {
			return k
		}
		t.nodes = append(t.nodes, trieNode{})
		k := int32(len(t.nodes) - 1)
		t.root[c] = k
		return k
	}
	nd := &t.nodes[n]
	for i, l := range nd.labels {
		if l == c {
			return nd.kids[i]
		}
	}
	if !create {
		return 0
	}
	t.nodes = append(t.nodes, trieNode{})
	k := int32(len(t.nodes) - 1)
	nd = &t.nodes[n] // append may have moved it
	nd.labels = append(nd.labels, c)
	nd.kids = append(nd.kids, k)
	return k
}

// scan sets bit id of found for every literal occurring in line, which must
// be ASCII (and lowercased, as the literals are). The first scan freezes
// the trie: add must not be called after it.
func (t *trie) scan(line string, found []uint64) {
	t.once.Do(t.freeze)
	f := &t.frozen
	set := func(n int32) {
		if out := f.out[n]; out != 0 {
			id := out - 1
			found[id>>6] |= 1 << (id & 63)
		}
	}
	for i := 0; i < len(line); i++ {
		c0 := line[i]
		if c0 >= 0x80 {
			continue
		}
		n := t.root[c0]
		if n == 0 {
			continue
		}
		set(n)
		if i+1 == len(line) || line[i+1] >= 0x80 {
			continue
		}
		if n = f.two[int(c0)<<7|int(line[i+1])]; n == 0 {
			continue
		}
		set(n)
		for j := i + 2; j < len(line); j++ {
			if n = f.child(n, line[j]); n == 0 {
				break
			}
			set(n)
		}
	}
}

// frozenTrie is the trie laid out for scanning. Built node by node, every
// node's children sat in two small slices of their own, and a walk chased
// a pointer into a different allocation at every byte: a scan of one
// never-seen User-Agent took ~24 µs (BenchmarkMixChain's profile). Here
// the children of all nodes lie in two flat arrays, and the nodes two
// bytes deep, where most walks end, are found in one table lookup.
type frozenTrie struct {
	two    []int32 // node reached from the root by bytes c0, c1: two[c0<<7|c1]; 0 none
	first  []int32 // node n's children are labels/kids[first[n]:first[n+1]]
	labels []byte
	kids   []int32
	out    []int32 // per node: id+1 of the literal ending there, 0 none
}

func (f *frozenTrie) child(n int32, c byte) int32 {
	for k := f.first[n]; k < f.first[n+1]; k++ {
		if f.labels[k] == c {
			return f.kids[k]
		}
	}
	return 0
}

// freeze builds t.frozen and drops the build-time nodes.
func (t *trie) freeze() {
	f := &t.frozen
	f.two = make([]int32, 128*128)
	f.first = make([]int32, len(t.nodes)+1)
	f.out = make([]int32, len(t.nodes))
	// Every node but the root is one edge.
	f.labels = make([]byte, 0, len(t.nodes)-1)
	f.kids = make([]int32, 0, len(t.nodes)-1)
	for n := range t.nodes {
		nd := &t.nodes[n]
		f.first[n] = int32(len(f.labels))
		f.labels = append(f.labels, nd.labels...)
		f.kids = append(f.kids, nd.kids...)
		f.out[n] = nd.out
	}
	f.first[len(t.nodes)] = int32(len(f.labels))
	for c0, n := range t.root {
		if n == 0 {
			continue
		}
		for i, c1 := range t.nodes[n].labels {
			f.two[c0<<7|int(c1)] = t.nodes[n].kids[i]
		}
	}
	t.nodes = nil
}
