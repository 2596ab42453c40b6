package compose

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// Cache memoises Render: a controller re-renders the same inputs on every
// resync, and loading compose files costs milliseconds while a hit costs a
// hash of the inputs. Entries are evicted least recently used first.
type Cache struct {
	mu      sync.Mutex
	size    int
	order   *list.List // of *cacheEntry, most recent first
	entries map[[32]byte]*list.Element
	renders atomic.Uint64
}

type cacheEntry struct {
	key   [32]byte
	stack *Stack
	reads map[string]fileRead // ReadFile results the stack depends on
}

// NewCache keeps up to size stacks (at least 1).
func NewCache(size int) *Cache {
	return &Cache{size: max(size, 1), order: list.New(), entries: map[[32]byte]*list.Element{}}
}

// Render is Render with memoisation. A hit returns the same *Stack as the
// miss that filled it: callers must not modify it. Errors are not cached.
// When the stack was rendered with data from Options.ReadFile, a hit reads
// those files again and renders anew if any changed.
func (c *Cache) Render(files []File, opts Options) (*Stack, error) {
	key := inputKey(files, opts)
	c.mu.Lock()
	el, ok := c.entries[key]
	if ok {
		c.order.MoveToFront(el)
	}
	c.mu.Unlock()
	if ok {
		e := el.Value.(*cacheEntry)
		if fresh(e.reads, opts.ReadFile) {
			return e.stack, nil
		}
	}
	c.renders.Add(1)
	st, reads, err := render(files, opts)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, stack: st, reads: reads})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
	return st, nil
}

// Renders counts the renders Render did, hits not included.
func (c *Cache) Renders() uint64 { return c.renders.Load() }

func fresh(reads map[string]fileRead, readFile func(string) ([]byte, error)) bool {
	for p, r := range reads {
		data, err := readFile(p)
		if (err == nil) != r.ok || r.ok && sha256.Sum256(data) != r.sum {
			return false
		}
	}
	return true
}

// InputKey identifies the inputs of a render: the same key, the same files and
// options (file: and env_file: contents read through ReadFile are not in it).
func InputKey(files []File, opts Options) [32]byte { return inputKey(files, opts) }

// inputKey hashes every input; each field is length-prefixed so that no two
// different inputs share an encoding.
func inputKey(files []File, opts Options) [32]byte {
	h := sha256.New()
	put := func(b []byte) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte(opts.StackName))
	putMap(put, opts.Variables)
	putMap(put, opts.SecretData)
	putMap(put, opts.ConfigData)
	// The sensitivity changes the warnings, the key the names and revision.
	sensitive := map[string]string{}
	for _, k := range opts.SensitiveVariables {
		sensitive[k] = ""
	}
	putMap(put, sensitive)
	put(opts.NameKey)
	if opts.OrderByDependsOn {
		put([]byte{1}) // validation and waves only then
	} else {
		put([]byte{0})
	}
	if opts.ReadFile != nil {
		put([]byte{1}) // with and without ReadFile, the same files can differ in outcome
	} else {
		put([]byte{0})
	}
	for _, f := range files {
		put([]byte(f.Name))
		put(f.Content)
	}
	var key [32]byte
	h.Sum(key[:0])
	return key
}

func putMap[V string | []byte](put func([]byte), m map[string]V) {
	put([]byte{byte(len(m) >> 24), byte(len(m) >> 16), byte(len(m) >> 8), byte(len(m))})
	for _, k := range sortedKeys(m) {
		put([]byte(k))
		put([]byte(m[k]))
	}
}
