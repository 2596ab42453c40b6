package compose

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	// the parser compose-go uses, so both see the same document
	"go.yaml.in/yaml/v4"
)

// Error is the error Render and MergedYAML return for invalid compose input.
// File is the File.Name of the file at fault and Line a 1-based line in it,
// when they can be told.
type Error struct {
	File string
	Line int
	Msg  string
}

// maxMessage bounds the message of an Error: compose-go quotes the offending value,
// which a hostile file makes as long as it likes, and the message ends up in a status
// condition (at most 32768 characters) and in events.
const maxMessage = 1024

func (e *Error) Error() string {
	msg := e.Msg
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = fmt.Sprintf("%s... (%d more bytes)", msg[:cut], len(msg)-cut)
	}
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
	case e.File != "":
		return e.File + ": " + msg
	}
	return msg
}

// source is one compose file as UTF-8 text plus its YAML node tree, kept to
// point errors and warnings at a file and line: compose-go's merged model has
// lost both.
type source struct {
	name string
	text []byte
	docs []*yaml.Node // one per YAML document; compose-go merges them in order
	// nodes counts the YAML nodes of all documents with aliases expanded (at most
	// maxNodes+1).
	nodes int
	// ordered: depends_on orders the release (Options.OrderByDependsOn), so it is no
	// key Swarm ignores.
	ordered bool
}

// Limits that keep a hostile or mistaken compose file from taking the operator down
// (see the package documentation). Legitimate files are far below them.
const (
	// MaxFileSize is the largest compose file accepted, in bytes: what one ConfigMap
	// can hold.
	MaxFileSize = 1 << 20
	// maxExpandedSize bounds what a file's YAML aliases may expand to, counted as
	// scalar bytes plus one per node: a small file whose aliases repeat a long value
	// thousands of times ("billion laughs") expands to gigabytes in the loader and
	// in the rendered specs.
	maxExpandedSize = 8 << 20
	// maxInterpolationDepth bounds the nesting of ${...} in one value: compose-go's
	// interpolation takes time cubic in it.
	maxInterpolationDepth = 32
	// The loader's time and memory grow with the YAML nodes (aliases expanded), with
	// the services (each costs far more than its few nodes) and, more than linearly,
	// with the documents it merges; these bound all files of one render together.
	maxNodes     = 100000
	maxServices  = 1000
	maxDocuments = 32
)

func newSource(f File) (*source, error) {
	if len(f.Content) > MaxFileSize {
		return nil, &Error{File: f.Name, Msg: fmt.Sprintf("the file has %d bytes; a compose file may have at most %d (1 MiB)", len(f.Content), MaxFileSize)}
	}
	text, err := toUTF8(f.Content)
	if err != nil {
		return nil, &Error{File: f.Name, Msg: err.Error()}
	}
	s := &source{name: f.Name, text: text}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, &Error{File: f.Name, Line: errLine(err.Error()), Msg: "invalid YAML: " + yamlLinePrefix.ReplaceAllString(err.Error(), "")}
		}
		s.docs = append(s.docs, &doc)
	}
	if err := s.checkLimits(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkLimits refuses documents whose aliases expand beyond maxExpandedSize and values
// whose ${...} nest deeper than maxInterpolationDepth, before compose-go expands or
// interpolates anything. Each node is visited once: expansions are memoised.
func (s *source) checkLimits() error {
	size := expansion(func(n *yaml.Node) int { return len(n.Value) + 1 }, maxExpandedSize)
	count := expansion(func(*yaml.Node) int { return 1 }, maxNodes)
	for _, doc := range s.docs {
		// An anchor that contains an alias of itself would make the loader recurse forever.
		if n := selfAlias(doc, map[*yaml.Node]bool{}); n != nil {
			return &Error{File: s.name, Line: n.Line, Msg: fmt.Sprintf("YAML alias *%s refers to its own anchor: the value would be infinite", n.Value)}
		}
		s.nodes = min(s.nodes+count(doc), maxNodes+1)
		if size(doc) > maxExpandedSize {
			// Name the anchor whose aliases cost most.
			var worst *yaml.Node
			cost := map[*yaml.Node]int{}
			eachNode(doc, func(n *yaml.Node) {
				if n.Kind == yaml.AliasNode && n.Alias != nil {
					if cost[n.Alias] += size(n.Alias); worst == nil || cost[n.Alias] > cost[worst] {
						worst = n.Alias
					}
				}
			})
			e := &Error{File: s.name, Line: doc.Line, Msg: fmt.Sprintf("YAML aliases expand the document to more than %d MiB; write the values out instead", maxExpandedSize>>20)}
			if worst != nil {
				e.Line = worst.Line
				e.Msg = fmt.Sprintf("YAML aliases of &%s expand the document to more than %d MiB; write the values out instead", worst.Anchor, maxExpandedSize>>20)
			}
			return e
		}
		var err *Error
		eachNode(doc, func(n *yaml.Node) {
			if err == nil && n.Kind == yaml.ScalarNode && strings.Count(n.Value, "${") > maxInterpolationDepth &&
				interpolationDepth(n.Value) > maxInterpolationDepth {
				err = &Error{File: s.name, Line: n.Line, Msg: fmt.Sprintf("${...} nested more than %d deep", maxInterpolationDepth)}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// expansion returns a function that sums weight over a tree with its aliases expanded,
// saturating above limit; it remembers every node's sum, so that each node costs once
// however often it is aliased.
func expansion(weight func(*yaml.Node) int, limit int) func(*yaml.Node) int {
	memo := map[*yaml.Node]int{}
	var sum func(n *yaml.Node) int
	sum = func(n *yaml.Node) int {
		if n == nil {
			return 0
		}
		if v, ok := memo[n]; ok {
			return v
		}
		memo[n] = 0 // an anchor that contains itself adds nothing more
		total := weight(n)
		if n.Kind == yaml.AliasNode {
			total += sum(n.Alias)
		}
		for _, c := range n.Content {
			if total += sum(c); total > limit {
				total = limit + 1 // saturate: no overflow, however deep
				break
			}
		}
		total = min(total, limit+1)
		memo[n] = total
		return total
	}
	return sum
}

// selfAlias returns an alias node that refers to one of its ancestors (an anchor that
// contains itself), or nil. YAML allows aliases only to anchors defined before them, so
// every cycle passes through such an alias.
func selfAlias(n *yaml.Node, ancestors map[*yaml.Node]bool) *yaml.Node {
	if n.Kind == yaml.AliasNode && ancestors[n.Alias] {
		return n
	}
	ancestors[n] = true
	defer delete(ancestors, n)
	for _, c := range n.Content {
		if found := selfAlias(c, ancestors); found != nil {
			return found
		}
	}
	return nil
}

// eachNode calls fn for every node of the tree once, without following aliases.
func eachNode(n *yaml.Node, fn func(*yaml.Node)) {
	fn(n)
	for _, c := range n.Content {
		eachNode(c, fn)
	}
}

// interpolationDepth is the deepest nesting of ${ in s ($$ escapes a $).
func interpolationDepth(s string) int {
	depth, deepest := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '$':
			i++
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
			deepest = max(deepest, depth)
			i++
		case s[i] == '}' && depth > 0:
			depth--
		}
	}
	return deepest
}

// toUTF8 accepts what editors save: UTF-8 with or without BOM, UTF-16 LE/BE
// (with BOM, or recognisable by a NUL in the first ASCII character as the
// YAML spec does), CRLF line ends.
func toUTF8(b []byte) ([]byte, error) {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		b = b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		order, b = binary.LittleEndian, b[2:]
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		order, b = binary.BigEndian, b[2:]
	case len(b) >= 2 && b[0] != 0 && b[1] == 0:
		order = binary.LittleEndian
	case len(b) >= 2 && b[0] == 0 && b[1] != 0:
		order = binary.BigEndian
	}
	if order != nil {
		if len(b)%2 != 0 {
			return nil, errors.New("truncated UTF-16 text (odd number of bytes)")
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = order.Uint16(b[2*i:])
		}
		b = []byte(string(utf16.Decode(u)))
	}
	if !utf8.Valid(b) {
		return nil, errors.New("file is neither UTF-8 nor UTF-16 text")
	}
	if bytes.IndexByte(b, '\r') >= 0 {
		b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	}
	return b, nil
}

var (
	// YAML parsers report "line N: " (optionally ", column C") before the
	// message; when nested, the last such prefix is the precise one.
	yamlLineRe     = regexp.MustCompile(`line (\d+)(?:, column \d+)?: `)
	yamlLinePrefix = regexp.MustCompile(`^yaml: (line \d+: )?`)
	// a compose model path inside a compose-go message, e.g. services.web.ports.0
	modelPathRe = regexp.MustCompile(`(?:^|[\s:'"])((?:services|networks|volumes|secrets|configs)\.[^\s:'"]+)`)
)

func errLine(msg string) int {
	m := yamlLineRe.FindAllStringSubmatch(msg, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// find returns the line of the node at path in the file (the last document
// that has it), and whether the whole path was found; when it was not, the
// line is that of the deepest part found.
func (s *source) find(path []string) (line int, full bool) {
	for i := len(s.docs) - 1; i >= 0; i-- {
		l, depth := walk(s.docs[i], path)
		if depth == len(path) {
			return l, true
		}
		if l > 0 && line == 0 {
			line = l
		}
	}
	return line, false
}

// walk follows path from n; it returns the line of the deepest key matched
// and how many path elements it consumed. Sequence elements match by index,
// by scalar value (networks: [a, b]) or by their `source:` (secrets).
func walk(n *yaml.Node, path []string) (line, depth int) {
	n = deref(n)
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = deref(n.Content[0])
	}
	for depth < len(path) && n != nil {
		var next *yaml.Node
		var nextLine, used int
		switch n.Kind {
		case yaml.MappingNode:
			// keys may contain dots (labels), so try the longest join first
			for j := len(path); j > depth && next == nil; j-- {
				key := strings.Join(path[depth:j], ".")
				if k, v := lookup(n, key); k != nil {
					next, nextLine, used = v, k.Line, j-depth
				}
			}
		case yaml.SequenceNode:
			key := path[depth]
			if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n.Content) {
				next = deref(n.Content[i])
			}
			for _, item := range n.Content {
				if next != nil {
					break
				}
				item = deref(item)
				if item.Kind == yaml.ScalarNode && item.Value == key {
					next = item
				} else if _, v := lookup(item, "source"); v != nil && v.Value == key {
					next = item
				}
			}
			if next != nil {
				nextLine, used = next.Line, 1
			}
		}
		if next == nil {
			return line, depth
		}
		n, line, depth = deref(next), nextLine, depth+used
	}
	return line, depth
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// lookup finds key in mapping n, including keys merged in with `<<:`.
func lookup(n *yaml.Node, key string) (k, v *yaml.Node) {
	eachKey(n, func(name string, kn, vn *yaml.Node) bool {
		if name == key {
			k, v = kn, vn
			return false
		}
		return true
	})
	return k, v
}

// keys calls fn for each key of mapping n, merged keys (`<<:`) included.
func keys(n *yaml.Node, fn func(key string, k, v *yaml.Node)) {
	eachKey(n, func(name string, k, v *yaml.Node) bool { fn(name, k, v); return true })
}

// eachKey walks a mapping and the mappings merged into it, each once: a
// file whose merges fan out (a1: {<<: [*a0, *a0]}, a2: {<<: [*a1, *a1]} ...)
// must not cost exponential time.
func eachKey(n *yaml.Node, fn func(key string, k, v *yaml.Node) bool) {
	seen := map[*yaml.Node]bool{}
	var visit func(n *yaml.Node) bool
	visit = func(n *yaml.Node) bool {
		n = deref(n)
		if n == nil || n.Kind != yaml.MappingNode || seen[n] {
			return true
		}
		seen[n] = true
		var merged []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], deref(n.Content[i+1])
			if k.Value == "<<" && v != nil {
				if v.Kind == yaml.SequenceNode {
					merged = append(merged, v.Content...)
				} else {
					merged = append(merged, v)
				}
				continue
			}
			if !fn(k.Value, k, v) {
				return false
			}
		}
		for _, m := range merged {
			if !visit(m) {
				return false
			}
		}
		return true
	}
	visit(n)
}

// locate finds the file (the last one, as later files override earlier ones)
// that holds path, for errors found after merging.
func locate(srcs []*source, path ...string) *Error {
	var partial *Error
	for i := len(srcs) - 1; i >= 0; i-- {
		line, full := srcs[i].find(path)
		if full {
			return &Error{File: srcs[i].name, Line: line}
		}
		if line > 0 && partial == nil {
			partial = &Error{File: srcs[i].name, Line: line}
		}
	}
	if partial != nil {
		return partial
	}
	return &Error{}
}

// errorAt builds an Error for a problem found in the merged model at path.
func errorAt(srcs []*source, path []string, format string, args ...any) *Error {
	e := locate(srcs, path...)
	e.Msg = fmt.Sprintf(format, args...)
	return e
}
