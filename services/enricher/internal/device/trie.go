package device

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
// be ASCII (and lowercased, as the literals are).
func (t *trie) scan(line string, found []uint64) {
	for i := 0; i < len(line); i++ {
		n := int32(0)
		for j := i; j < len(line); j++ {
			if n = t.child(n, line[j], false); n == 0 {
				break
			}
			if out := t.nodes[n].out; out != 0 {
				id := out - 1
				found[id>>6] |= 1 << (id & 63)
			}
		}
	}
}
