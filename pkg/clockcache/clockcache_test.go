package clockcache

import (
	"hash/maphash"
	"strconv"
	"sync"
	"testing"
)

func TestGetPut(t *testing.T) {
	c := New[int](64)
	var v int
	if c.Get([]byte("a"), &v) {
		t.Fatal("empty cache hit")
	}
	one := 1
	c.Put("a", &one)
	if !c.Get([]byte("a"), &v) || v != 1 {
		t.Fatalf("got %d", v)
	}
	two := 2
	c.Put("a", &two)
	if !c.Get([]byte("a"), &v) || v != 2 || c.Len() != 1 {
		t.Fatalf("overwrite: %d len %d", v, c.Len())
	}
	if h, m := c.Stats(); h != 2 || m != 1 {
		t.Fatalf("stats %d/%d", h, m)
	}
}

// The cache stays within its bound, and keys in use survive a flood of
// one-off keys (the long tail of User-Agents).
func TestBoundedAndKeepsHotKeys(t *testing.T) {
	const size = 160
	c := New[int](size)
	hot := []string{"chrome", "safari", "firefox"}
	for i, k := range hot {
		c.Put(k, &i)
	}
	var v int
	for i := range 10000 {
		for _, k := range hot {
			if !c.Get([]byte(k), &v) {
				t.Fatalf("hot key %s evicted after %d one-off keys", k, i)
			}
		}
		k := "one-off-" + strconv.Itoa(i)
		c.Put(k, &i)
	}
	if n := c.Len(); n > size+shards {
		t.Fatalf("len %d over bound %d", n, size)
	}
}

func TestConcurrent(t *testing.T) {
	c := New[string](100)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out string
			for i := range 2000 {
				k := strconv.Itoa((i * (g + 1)) % 300)
				if !c.Get([]byte(k), &out) {
					c.Put(k, &k)
				} else if out != k {
					t.Errorf("key %s has value %s", k, out)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkGetHit(b *testing.B) {
	c := New[[4]string](1000)
	v := [4]string{"Chrome", "131", "Windows", "10"}
	c.Put("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", &v)
	key := []byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
	var out [4]string
	b.ReportAllocs()
	for b.Loop() {
		c.Get(key, &out)
	}
}

// sameShardKeys returns n keys that fall into one shard of c.
func sameShardKeys(c *Cache[string], n int) []string {
	var keys []string
	want := maphash.String(c.seed, "k0") % shards
	for i := 0; len(keys) < n; i++ {
		k := "k" + strconv.Itoa(i)
		if maphash.String(c.seed, k)%shards == want {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestSecondChance checks the CLOCK policy: an entry hit since the last
// sweep survives an eviction that takes an unreferenced one.
func TestSecondChance(t *testing.T) {
	c := New[string](2 * shards) // two entries per shard
	k := sameShardKeys(c, 4)
	var out string
	c.Put(k[0], &k[0])
	c.Put(k[1], &k[1])
	if !c.Get([]byte(k[0]), &out) || out != k[0] {
		t.Fatal("k0 not cached")
	}
	c.Put(k[2], &k[2]) // evicts k1: k0 was referenced
	if !c.Get([]byte(k[0]), &out) || out != k[0] {
		t.Fatal("referenced entry evicted")
	}
	if c.Get([]byte(k[1]), &out) {
		t.Fatal("unreferenced entry survived")
	}
	// Both referenced now: the sweep clears both bits and evicts the first
	// it meets again, never looping forever.
	c.Put(k[3], &k[3])
	if !c.Get([]byte(k[3]), &out) || c.Len() != 2 {
		t.Fatalf("k3 missing or shard holds %d", c.Len())
	}
	// Every indexed key points at the entry that holds it.
	for i := range c.shards {
		s := &c.shards[i]
		for key, j := range s.index {
			if s.entries[j].key != key || s.entries[j].val != key {
				t.Fatalf("index %q -> entry %q", key, s.entries[j].key)
			}
		}
	}
}
