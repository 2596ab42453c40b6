package compose

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostileCase is what one file of testdata/hostile must produce: an *Error naming the
// file, with these fragments, at this line (0: any line).
type hostileCase struct {
	line  int
	frags []string
	// aloneOnly: the file is an error on its own but a valid override after a core file
	// (an empty file; a service that takes its image from the core file).
	aloneOnly bool
}

// hostileCorpus lists every file of testdata/hostile: malformed, hostile or absurd
// compose files. Each must fail with an error naming the file, never panic, and stay
// within hostileTimeLimit and hostileMemLimit.
var hostileCorpus = map[string]hostileCase{
	// Alias bombs: a few KiB that expand to gigabytes.
	"billion-laughs.yml":            {line: 8, frags: []string{"YAML aliases", "expand the document to more than 8 MiB"}},
	"billion-laughs-in-service.yml": {frags: []string{"YAML aliases", "more than 8 MiB"}},
	"quadratic-blowup.yml":          {line: 2, frags: []string{"aliases of &big", "more than 8 MiB"}},
	"merge-key-fanout.yml":          {frags: []string{"YAML aliases", "more than 8 MiB"}},
	"anchor-contains-itself.yml":    {frags: []string{"refers to its own anchor"}},
	"undefined-alias.yml":           {line: 4, frags: []string{"unknown anchor 'nowhere'"}},
	// Nesting.
	"deep-flow-sequence.yml": {line: 4, frags: []string{"exceeded max depth"}},
	"deep-flow-mapping.yml":  {line: 4, frags: []string{"exceeded max depth"}},
	"deep-block-mapping.yml": {line: 5, frags: []string{"services.web.labels.a must be"}},
	// Bytes that are not YAML text.
	"binary.elf":             {frags: []string{"neither UTF-8 nor UTF-16"}},
	"gzip.yml.gz":            {frags: []string{"neither UTF-8 nor UTF-16"}},
	"invalid-utf8.yml":       {frags: []string{"neither UTF-8 nor UTF-16"}},
	"utf16-odd-length.yml":   {frags: []string{"truncated UTF-16"}},
	"nul-byte.yml":           {frags: []string{"control characters are not allowed"}},
	"control-characters.yml": {frags: []string{"control characters are not allowed"}},
	// Syntax.
	"tabs.yml":                    {line: 2, frags: []string{"invalid YAML"}},
	"unterminated-quote.yml":      {frags: []string{"invalid YAML", "quoted scalar"}},
	"duplicate-keys.yml":          {line: 4, frags: []string{`mapping key "web" already defined at line 2`}},
	"duplicate-top-level-key.yml": {line: 4, frags: []string{`mapping key "services" already defined`}},
	"merge-key-not-a-mapping.yml": {frags: []string{"map merge requires map"}},
	"second-document-broken.yml":  {frags: []string{"services"}},
	// Shape and types.
	"empty.yml":                   {frags: []string{"empty compose file"}, aloneOnly: true},
	"only-comments.yml":           {frags: []string{"empty compose file"}, aloneOnly: true},
	"top-level-scalar.yml":        {frags: []string{"top-level object must be a mapping"}},
	"top-level-sequence.yml":      {frags: []string{"top-level object must be a mapping"}},
	"services-is-a-list.yml":      {frags: []string{"services"}},
	"unknown-key.yml":             {line: 4, frags: []string{`unknown key "imagee"`}},
	"unknown-top-level-key.yml":   {frags: []string{"'servics' not allowed"}},
	"wrong-type-ports.yml":        {line: 4, frags: []string{"services.web.ports must be a array"}},
	"wrong-type-environment.yml":  {line: 4, frags: []string{"services.web.environment must be a mapping"}},
	"wrong-type-deploy.yml":       {line: 4, frags: []string{"services.web.deploy must be a mapping"}},
	"include.yml":                 {line: 1, frags: []string{"include is not supported"}},
	"forbidden-key.yml":           {line: 4, frags: []string{`key "extends" is not supported`}},
	"service-without-image.yml":   {line: 2, frags: []string{"no image specified"}, aloneOnly: true},
	"service-name-too-long.yml":   {line: 2, frags: []string{"is not valid in Swarm", "at most 63"}},
	"service-name-invalid.yml":    {line: 2, frags: []string{`"st_web.frontend" is not valid in Swarm`}},
	"image-reference-invalid.yml": {line: 3, frags: []string{"invalid image reference"}},
	// Values out of range.
	"replicas-two-to-the-63.yml":           {line: 4, frags: []string{"replicas must be a whole number from 0 to 100000"}},
	"replicas-absurd.yml":                  {line: 4, frags: []string{"replicas must be a whole number from 0 to 100000"}},
	"replicas-negative.yml":                {line: 4, frags: []string{"replicas must be a whole number"}},
	"replicas-float.yml":                   {line: 4, frags: []string{"replicas must be a integer"}},
	"replicas-with-global.yml":             {line: 4, frags: []string{"replicas can only be used with replicated"}},
	"port-99999.yml":                       {frags: []string{"hostPort: 99999"}},
	"port-negative.yml":                    {frags: []string{"hostPort: -1"}},
	"port-published-99999-long-syntax.yml": {line: 4, frags: []string{`published port "99999" is not between 1 and 65535`}},
	"port-target-99999-long-syntax.yml":    {line: 4, frags: []string{"target port 99999 is not between 1 and 65535"}},
	"memory-negative.yml":                  {line: 4, frags: []string{"limits.memory", "invalid size"}},
	"memory-overflow.yml":                  {line: 4, frags: []string{"memory limit out of range"}},
	"memory-reservation-overflow.yml":      {line: 4, frags: []string{"memory reservation out of range"}},
	"cpus-negative.yml":                    {line: 4, frags: []string{"invalid cpus value -2"}},
	"cpus-infinite.yml":                    {line: 4, frags: []string{"invalid cpus value"}},
	"duration-overflow.yml":                {line: 4, frags: []string{"stop_grace_period", "invalid duration"}},
	"parallelism-negative.yml":             {line: 4, frags: []string{"update_config.parallelism"}},
	"healthcheck-retries-negative.yml":     {line: 4, frags: []string{"healthcheck.retries"}},
	"max-failure-ratio-out-of-range.yml":   {line: 4, frags: []string{"max_failure_ratio must be between 0 and 1"}},
	// Interpolation.
	"interpolation-nesting.yml":      {line: 4, frags: []string{"nested more than 32 deep"}},
	"interpolation-unterminated.yml": {line: 4, frags: []string{"invalid interpolation format"}},
	"required-variable.yml":          {line: 4, frags: []string{"DB_PASSWORD", "the database password is required"}},
}

const (
	hostileTimeLimit = 10 * time.Second // per render; each takes milliseconds
	hostileMemLimit  = 512 << 20        // bytes allocated by one render
)

const hostileCore = "services:\n  web:\n    image: nginx\n"

// TestHostileCorpus renders each file of testdata/hostile alone and as an override
// after a valid core file: always an error naming the hostile file.
func TestHostileCorpus(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "hostile"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		onDisk = append(onDisk, e.Name())
	}
	// The corpus cannot shrink or grow unnoticed.
	for _, name := range onDisk {
		if _, ok := hostileCorpus[name]; !ok {
			t.Errorf("testdata/hostile/%s has no entry in hostileCorpus", name)
		}
	}
	for name := range hostileCorpus {
		if _, err := os.Stat(filepath.Join("testdata", "hostile", name)); err != nil {
			t.Errorf("hostileCorpus lists %s: %v", name, err)
		}
	}
	if len(onDisk) < 30 {
		t.Errorf("only %d hostile files", len(onDisk))
	}
	sort.Strings(onDisk)
	for _, name := range onDisk {
		tc, ok := hostileCorpus[name]
		if !ok {
			continue
		}
		content, err := os.ReadFile(filepath.Join("testdata", "hostile", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			err := renderBounded(t, []File{{Name: name, Content: content}})
			wantHostileError(t, err, name, tc.line, tc.frags)
			over := renderBounded(t, []File{{Name: "core.yml", Content: []byte(hostileCore)}, {Name: name, Content: content}})
			if tc.aloneOnly {
				if over != nil {
					t.Errorf("as an override after a valid core file: %v", over)
				}
				return
			}
			wantHostileError(t, over, name, tc.line, tc.frags)
		})
	}
}

// TestHostileGenerated covers inputs too large to keep in testdata.
func TestHostileGenerated(t *testing.T) {
	envLines := func(size int) []byte {
		var b strings.Builder
		b.WriteString(hostileCore + "    environment:\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "      VAR_%07d: %s\n", i, strings.Repeat("x", 64))
		}
		return []byte(b.String())
	}
	random := make([]byte, 20<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	var services strings.Builder
	services.WriteString("services:\n")
	for i := 0; services.Len() < MaxFileSize-64; i++ {
		fmt.Fprintf(&services, "  s%d: {image: nginx}\n", i)
	}
	var documents strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&documents, "---\nservices: {s%d: {image: nginx}}\n", i)
	}
	var aliasedMapping strings.Builder
	aliasedMapping.WriteString("x-labels: &labels\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&aliasedMapping, "  l%d: v\n", i)
	}
	aliasedMapping.WriteString("services:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&aliasedMapping, "  s%d: {image: nginx, labels: *labels}\n", i)
	}
	var blowup strings.Builder
	blowup.WriteString(`x-big: &big "` + strings.Repeat("A", 900<<10) + "\"\n" + hostileCore + "    environment:\n")
	for i := 0; blowup.Len() < MaxFileSize-32; i++ {
		fmt.Fprintf(&blowup, "      K%d: *big\n", i)
	}
	cases := []struct {
		name    string
		content []byte
		frags   []string
	}{
		{"20MiB.yml", envLines(20 << 20), []string{"at most 1048576"}},
		{"1MiB-and-1-byte.yml", envLines(MaxFileSize + 1)[:MaxFileSize+1], []string{"has 1048577 bytes"}},
		{"20MiB-random.bin", random, []string{"at most 1048576"}},
		{"50000-services.yml", []byte(services.String()), []string{"more than 1000 services"}},
		{"1000-documents.yml", []byte(documents.String()), []string{"more than 32 YAML documents"}},
		{"mapping-aliased-100-times.yml", []byte(aliasedMapping.String()), []string{"more than 100000 YAML nodes"}},
		{"900KiB-aliased-1000-times.yml", []byte(blowup.String()), []string{"aliases of &big"}},
		{"600KiB-value-quoted-in-the-error.yml", []byte(hostileCore + `    environment: ["A=${X` + strings.Repeat("B", 600<<10) + "\"]\n"), []string{"invalid interpolation format", "more bytes)"}},
		{"600KiB-unknown-key.yml", []byte(hostileCore + "    " + strings.Repeat("B", 600<<10) + ": 1\n"), []string{"unknown key", "more bytes)"}},
		{"1MiB-one-line.yml", []byte(hostileCore + `    command: ["` + strings.Repeat("\\u00", MaxFileSize/4-100) + `"]` + "\n"), []string{"invalid YAML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantHostileError(t, renderBounded(t, []File{{Name: tc.name, Content: tc.content}}), tc.name, 0, tc.frags)
		})
	}
	// Limits over all files together name the file that goes over them.
	t.Run("services over several files", func(t *testing.T) {
		var files []File
		for f := 0; f < 3; f++ {
			var b strings.Builder
			b.WriteString("services:\n")
			for i := 0; i < 400; i++ {
				fmt.Fprintf(&b, "  f%d-s%d: {image: nginx}\n", f, i)
			}
			files = append(files, File{Name: fmt.Sprintf("part%d.yml", f), Content: []byte(b.String())})
		}
		wantHostileError(t, renderBounded(t, files), "part2.yml", 1, []string{"more than 1000 services"})
	})
	t.Run("documents over several files", func(t *testing.T) {
		var files []File
		for f := 0; f < 40; f++ {
			files = append(files, File{Name: fmt.Sprintf("part%d.yml", f), Content: []byte(hostileCore)})
		}
		wantHostileError(t, renderBounded(t, files), "part32.yml", 0, []string{"more than 32 YAML documents"})
	})
	// The limits leave room: a file of exactly MaxFileSize, and ${...} nested as deep as
	// allowed, still render, in bounded time and memory.
	t.Run("exactly MaxFileSize renders", func(t *testing.T) {
		content := envLines(MaxFileSize)
		for len(content) > MaxFileSize { // cut the last, partial line
			content = content[:strings.LastIndexByte(string(content[:len(content)-1]), '\n')+1]
		}
		if err := renderBounded(t, []File{{Name: "big.yml", Content: content}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("interpolation nested 32 deep renders", func(t *testing.T) {
		yml := hostileCore + `    environment: ["A=` + strings.Repeat("${X:-", maxInterpolationDepth) + "deep" + strings.Repeat("}", maxInterpolationDepth) + "\"]\n"
		if err := renderBounded(t, []File{{Name: "deep.yml", Content: []byte(yml)}}); err != nil {
			t.Fatal(err)
		}
	})
}

func wantHostileError(t *testing.T, err error, name string, line int, frags []string) {
	t.Helper()
	var e *Error
	switch {
	case err == nil:
		t.Fatal("rendered without error")
	case strings.Contains(err.Error(), "internal error"):
		t.Fatalf("the library panicked: %v", err)
	case !errors.As(err, &e):
		t.Fatalf("want *Error, got %T: %v", err, err)
	case e.File != name || !strings.HasPrefix(err.Error(), name):
		t.Errorf("error does not name %s first: %v", name, err)
	case line != 0 && e.Line != line:
		t.Errorf("error at line %d, want %d: %v", e.Line, line, err)
	}
	for _, f := range frags {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error does not mention %q: %v", f, err)
		}
	}
	if len(err.Error()) > 4096 {
		t.Errorf("error message is %d bytes long: it ends up in a condition", len(err.Error()))
	}
}

// renderBounded renders the files and fails the test when that takes longer than
// hostileTimeLimit or allocates more than hostileMemLimit. It returns Render's error.
func renderBounded(t *testing.T, files []File) error {
	t.Helper()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > before.HeapAlloc && ms.HeapAlloc-before.HeapAlloc > peak.Load() {
			peak.Store(ms.HeapAlloc - before.HeapAlloc)
		}
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := Render(files, Options{StackName: "st"})
		done <- err
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(hostileTimeLimit)
	for {
		select {
		case err := <-done:
			sample()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s in %v: %d MiB allocated, heap peak +%d MiB", files[len(files)-1].Name,
				time.Since(start).Round(time.Millisecond), allocated>>20, peak.Load()>>20)
			if allocated > hostileMemLimit {
				t.Errorf("render allocated %d MiB, limit %d MiB", allocated>>20, hostileMemLimit>>20)
			}
			return err
		case <-tick.C:
			sample()
		case <-deadline:
			t.Fatalf("render still running after %v (heap peak +%d MiB)", hostileTimeLimit, peak.Load()>>20)
		}
	}
}
