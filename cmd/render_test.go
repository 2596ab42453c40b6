package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/swarmops/swarm-operator/internal/compose"
)

// samples is the seed scenario's directory: its name, "numbers", is the
// default stack name.
var samples = filepath.Join("..", "config", "samples", "numbers")

func sample(name string) string { return filepath.Join(samples, name) }

type result struct {
	code           int
	stdout, stderr string
}

func render(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runRender(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// want checks the exit code and that stderr holds every fragment.
func (r result) want(t *testing.T, code int, stderr ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not mention %q:\n%s", s, r.stderr)
		}
	}
}

// renderDirect is what the command must print, rendered by the library.
func renderDirect(t *testing.T, stack string, files ...string) *compose.Stack {
	t.Helper()
	var in []compose.File
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, compose.File{Name: f, Content: b})
	}
	st, err := compose.Render(in, compose.Options{StackName: stack})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRenderMergedCompose(t *testing.T) {
	core, prod := sample("docker-compose.yml"), sample("prod.yml")
	t.Run("yaml", func(t *testing.T) {
		r := render(t, "-f", core, "-f", prod, "--output", "compose")
		r.want(t, 0)
		if r.stderr != "" {
			t.Errorf("stderr: %s", r.stderr)
		}
		var merged struct {
			Name     string
			Services map[string]struct {
				Image  string
				Deploy struct {
					Mode     string
					Replicas int
				}
			}
		}
		if err := yaml.Unmarshal([]byte(r.stdout), &merged); err != nil {
			t.Fatalf("%v:\n%s", err, r.stdout)
		}
		api, web := merged.Services["numbers-api"], merged.Services["numbers-web"]
		if merged.Name != "numbers" || api.Image != "numbers-api:v1" || api.Deploy.Replicas != 6 || web.Deploy.Mode != "global" {
			t.Errorf("prod.yml is not merged into the core file:\n%s", r.stdout)
		}
	})
	t.Run("json is the same document", func(t *testing.T) {
		y := render(t, "-f", core, "-f", prod, "--output", "compose")
		j := render(t, "-f", core, "-f", prod, "--output", "compose", "--format", "json")
		j.want(t, 0)
		fromYAML, err := yaml.YAMLToJSON([]byte(y.stdout))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(fromYAML, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(j.stdout), &b); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, j.stdout)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("--format json differs from the YAML:\n%s\n%s", ja, jb)
		}
	})
	t.Run("a later file overrides an earlier one", func(t *testing.T) {
		r := render(t, "-f", core, "-f", prod, "-f", sample("v5.yml"), "--output", "compose")
		r.want(t, 0)
		if !strings.Contains(r.stdout, "numbers-api:v5") || strings.Contains(r.stdout, "numbers-api:v1") {
			t.Errorf("v5.yml does not win:\n%s", r.stdout)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenderSwarm(t *testing.T) {
	files := []string{sample("docker-compose.yml"), sample("prod-full.yml"), sample("v5.yml")}
	want := renderDirect(t, "numbers", files...)
	args := []string{"-f", files[0], "-f", files[1], "-f", files[2]}

	t.Run("json is the library's stack", func(t *testing.T) {
		r := render(t, append(args, "--format", "json")...)
		r.want(t, 0)
		wantJSON, _ := json.MarshalIndent(want, "", "  ")
		if strings.TrimSpace(r.stdout) != string(wantJSON) {
			t.Errorf("output differs from compose.Render:\n%s", r.stdout)
		}
	})
	t.Run("yaml is the default, stack named after the directory", func(t *testing.T) {
		r := render(t, args...)
		r.want(t, 0)
		var got compose.Stack
		if err := yaml.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v:\n%s", err, r.stdout)
		}
		if got.Name != "numbers" || got.Revision != want.Revision || len(got.Services) != 2 || got.Services[0].Name != "numbers_numbers-api" {
			t.Errorf("got stack %q revision %s with %d services, want %q %s:\n%s", got.Name, got.Revision, len(got.Services), want.Name, want.Revision, r.stdout)
		}
		if mustJSON(t, got.Services) != mustJSON(t, want.Services) {
			t.Error("services differ from compose.Render")
		}
	})
	t.Run("--stack names the stack", func(t *testing.T) {
		r := render(t, append(args, "--stack", "prod", "--format", "json")...)
		r.want(t, 0)
		var got compose.Stack
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatal(err)
		}
		if got.Name != "prod" || got.Services[0].Name != "prod_numbers-api" || got.Revision != renderDirect(t, "prod", files...).Revision {
			t.Errorf("stack %q, services %v", got.Name, got.Services)
		}
	})
}

func TestRenderVariables(t *testing.T) {
	dir := writeFiles(t, map[string]string{"stack.yml": `services:
  web:
    image: numbers-web:${TAG}
    environment:
      LEVEL: ${LEVEL:-info}
      URL: ${URL}
`})
	file := filepath.Join(dir, "stack.yml")
	image := func(t *testing.T, r result) (string, []string) {
		t.Helper()
		r.want(t, 0)
		var st compose.Stack
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("%v:\n%s", err, r.stdout)
		}
		cs := st.Services[0].Spec.TaskTemplate.ContainerSpec
		return cs.Image, cs.Env
	}
	img, env := image(t, render(t, "-f", file, "--stack", "demo", "--format", "json", "--var", "TAG=v9", "--var", "URL=http://x/?a=b"))
	if img != "numbers-web:v9" || mustJSON(t, env) != `["LEVEL=info","URL=http://x/?a=b"]` {
		t.Errorf("image %q env %q", img, env)
	}
	// A later --var wins; the machine's environment is never read.
	t.Setenv("LEVEL", "from-the-environment")
	img, env = image(t, render(t, "-f", file, "--stack", "demo", "--format", "json", "--var", "TAG=v1", "--var", "TAG=v2", "--var", "URL=", "--var", "LEVEL=debug"))
	if img != "numbers-web:v2" || mustJSON(t, env) != `["LEVEL=debug","URL="]` {
		t.Errorf("image %q env %q", img, env)
	}
	t.Run("unset variables warn", func(t *testing.T) {
		r := render(t, "-f", file, "--stack", "demo", "--var", "TAG=v1")
		r.want(t, 0, "warning: ", "URL")
	})
	t.Run("--var without =", func(t *testing.T) {
		r := render(t, "-f", file, "--var", "TAG")
		r.want(t, 2, `--var "TAG": want K=V`)
	})
}

func TestRenderFiles(t *testing.T) {
	// file: sources are relative to the first file's directory, as for
	// docker stack deploy; secret data is never printed.
	dir := writeFiles(t, map[string]string{
		"stack.yml": `services:
  web:
    image: numbers-web:v1
    build: .
    secrets: [pw]
    configs: [conf]
secrets:
  pw:
    file: ./pw.txt
configs:
  conf:
    file: conf.txt
`,
		"pw.txt":   "hunter2",
		"conf.txt": "listen :80",
	})
	r := render(t, "-f", filepath.Join(dir, "stack.yml"), "--stack", "demo", "--format", "json")
	r.want(t, 0, `warning: service "web": key "build" is ignored by Swarm`)
	for _, leak := range []string{"hunter2", base64.StdEncoding.EncodeToString([]byte("hunter2"))} {
		if strings.Contains(r.stdout, leak) {
			t.Errorf("secret data printed:\n%s", r.stdout)
		}
	}
	var st compose.Stack
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Secrets) != 1 || !strings.HasPrefix(st.Secrets[0].Name, "demo_pw-") || st.Secrets[0].Spec.Data != nil {
		t.Errorf("secrets %+v", st.Secrets)
	}
	if len(st.Configs) != 1 || string(st.Configs[0].Spec.Data) != "listen :80" {
		t.Errorf("configs %+v", st.Configs)
	}
}

func TestRenderErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"broken.yml":   "services:\n  web:\n    image: [\n",
		"noimage.yml":  "services:\n  web:\n    command: [serve]\n",
		"badkey.yml":   "services:\n  web:\n    image: x\n    deploy:\n      replicas: many\n",
		"nosecret.yml": "services:\n  web:\n    image: x\n    secrets: [pw]\nsecrets:\n  pw:\n    file: missing.txt\n",
	})
	in := func(name string) string { return filepath.Join(dir, name) }
	cases := map[string]struct {
		args   []string
		code   int
		stderr []string
	}{
		"no file":             {nil, 2, []string{"give at least one compose file with -f"}},
		"missing file":        {[]string{"-f", sample("docker-compose.yml"), "-f", in("absent.yml")}, 1, []string{in("absent.yml"), "no such file"}},
		"invalid YAML":        {[]string{"-f", in("broken.yml")}, 1, []string{in("broken.yml") + ":"}},
		"invalid YAML merged": {[]string{"-f", in("broken.yml"), "--output", "compose"}, 1, []string{in("broken.yml") + ":"}},
		"no image":            {[]string{"-f", in("noimage.yml")}, 1, []string{in("noimage.yml") + ":", "no image"}},
		"invalid value":       {[]string{"-f", sample("docker-compose.yml"), "-f", in("badkey.yml")}, 1, []string{in("badkey.yml") + ":", "replicas"}},
		"missing secret file": {[]string{"-f", in("nosecret.yml")}, 1, []string{in("nosecret.yml") + ":", "missing.txt"}},
		"invalid stack name":  {[]string{"-f", in("noimage.yml"), "--stack", "Prod"}, 1, []string{`invalid stack name "Prod"`}},
		"unknown flag":        {[]string{"-f", in("noimage.yml"), "--nope"}, 2, []string{"flag provided but not defined: -nope"}},
		"unknown output":      {[]string{"-f", in("broken.yml"), "--output", "k8s"}, 2, []string{`--output must be compose or swarm, not "k8s"`}},
		"unknown format":      {[]string{"-f", in("broken.yml"), "--format", "toml"}, 2, []string{`--format must be yaml or json, not "toml"`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := render(t, tc.args...)
			r.want(t, tc.code, tc.stderr...)
			if r.stdout != "" {
				t.Errorf("stdout on error:\n%s", r.stdout)
			}
		})
	}
}

func TestRenderNameKeyFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"stack.yml": "services:\n  web:\n    image: numbers-web:v1\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ./pw.txt\n",
		"pw.txt":    "hunter2",
		"key":       "operator-key",
	})
	secretName := func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		r := render(t, append([]string{"-f", filepath.Join(dir, "stack.yml"), "--stack", "demo", "--format", "json"}, args...)...)
		r.want(t, 0)
		var st compose.Stack
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("%v:\n%s", err, r.stdout)
		}
		return st.Secrets[0].Name, st.Revision
	}
	plain, plainRev := secretName(t)
	keyed, keyedRev := secretName(t, "--name-key-file", filepath.Join(dir, "key"))
	want, err := compose.Render([]compose.File{{Name: "stack.yml", Content: []byte("services:\n  web:\n    image: numbers-web:v1\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ./pw.txt\n")}},
		compose.Options{StackName: "demo", SecretData: map[string][]byte{"pw": []byte("hunter2")}, NameKey: []byte("operator-key")})
	if err != nil {
		t.Fatal(err)
	}
	if keyed == plain || keyedRev == plainRev || keyed != want.Secrets[0].Name {
		t.Errorf("keyed name %s (revision %s), unkeyed %s (%s), the library with the key: %s", keyed, keyedRev, plain, plainRev, want.Secrets[0].Name)
	}
	r := render(t, "-f", filepath.Join(dir, "stack.yml"), "--name-key-file", filepath.Join(dir, "absent"))
	r.want(t, 1, "--name-key-file")
}
