package compose

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current output")

// numbersDir holds the seed scenario's compose files. They are the operator's
// samples, which the integration tests deploy too: one copy, tested here.
var numbersDir = filepath.Join("..", "..", "config", "samples", "numbers")

// numbersFiles reads the seed scenario's compose files from numbersDir.
func numbersFiles(t testing.TB, names ...string) []File {
	t.Helper()
	var files []File
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(numbersDir, n))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Name: n, Content: b})
	}
	return files
}

// TestGoldenNumbers pins the full rendered stack of the seed scenario's
// releases; run with -update after an intended change and review the diff.
func TestGoldenNumbers(t *testing.T) {
	cases := map[string][]string{
		"core-prod-healthcheck-update-rollback-v3": {"docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "prod-rollback-config.yml", "v3.yml"},
		"core-prodfull-v5":                         {"docker-compose.yml", "prod-full.yml", "v5.yml"},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			st, err := Render(numbersFiles(t, files...), Options{StackName: "numbers"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered stack differs from %s (run with -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
