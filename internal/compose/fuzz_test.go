package compose

import (
	"strings"
	"testing"
	"time"
)

// FuzzRender: no input may panic (Render turns panics into "internal
// error"), and a successful render is deterministic.
//
// Plain `go test` runs the seed corpus below (and testdata/fuzz/FuzzRender,
// where failing inputs are saved). CI runs a bounded fuzz on top:
//
//	go test ./internal/compose -run '^$' -fuzz '^FuzzRender$' -fuzztime 20s
//
// A failure writes the input to testdata/fuzz/FuzzRender/: keep that
// directory as the job's artifact and commit the file with the fix.
func FuzzRender(f *testing.F) {
	// The seed scenario (config/samples/numbers): a missing file must fail,
	// not silently shrink the corpus.
	core := numbersFiles(f, "docker-compose.yml")[0].Content
	for _, n := range numbersFiles(f, "prod.yml", "prod-full.yml", "v5.yml", "prod-healthcheck.yml") {
		f.Add(core, n.Content)
	}
	f.Add([]byte("services:\n  a:\n    image: x\n    ports: [\"1-3:1-3\"]\n    volumes: [v:/v, /a:/b:ro]\nvolumes: {v: {}}\n"), []byte("version: '3'\nservices: {a: {deploy: {mode: global}}}\n"))
	f.Add([]byte("services:\n  a:\n    image: x\n    ports: [\"80:80\", {target: 81, published: 80, mode: host}]\n"), []byte("services: {a: {deploy: {endpoint_mode: dnsrr}, ports: [\"81\"]}}\n"))
	f.Add([]byte("x: &a {image: x}\nservices:\n  a: {<<: *a, secrets: [s]}\nsecrets: {s: {content: x}}\n"), []byte("\xff\xfes\x00"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		files := []File{{Name: "a.yml", Content: a}, {Name: "b.yml", Content: b}}
		opts := Options{StackName: "fz", Variables: map[string]string{"A": "1"}}
		start := time.Now()
		st, err := Render(files, opts)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("render took %v", d)
		}
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatal(err)
			}
			return
		}
		again, err := Render(files, opts)
		if err != nil || again.Revision != st.Revision {
			t.Fatalf("second render differs: %v", err)
		}
	})
}
