package compose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzRender: no input may panic (Render turns panics into "internal
// error"), and a successful render is deterministic.
func FuzzRender(f *testing.F) {
	core, _ := os.ReadFile(filepath.Join("testdata", "numbers", "docker-compose.yml"))
	for _, n := range []string{"prod.yml", "prod-full.yml", "v5.yml", "prod-healthcheck.yml"} {
		b, _ := os.ReadFile(filepath.Join("testdata", "numbers", n))
		f.Add(core, b)
	}
	f.Add([]byte("services:\n  a:\n    image: x\n    ports: [\"1-3:1-3\"]\n    volumes: [v:/v, /a:/b:ro]\nvolumes: {v: {}}\n"), []byte("version: '3'\nservices: {a: {deploy: {mode: global}}}\n"))
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
