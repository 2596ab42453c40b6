package compose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/sirupsen/logrus"
)

func TestNetworks(t *testing.T) {
	t.Run("default network only when a service has no networks key", func(t *testing.T) {
		st := stackOf(t, "services:\n  a:\n    image: x\n    networks: [front]\n  b:\n    image: x\nnetworks:\n  front: {}\n  unused: {}\n")
		jsonEq(t, "networks", st.Networks, []Network{
			{Name: "st_default", Spec: network.CreateOptions{Driver: "overlay", Labels: map[string]string{"com.docker.stack.namespace": "st"}}},
			{Name: "st_front", Spec: network.CreateOptions{Driver: "overlay", Labels: map[string]string{"com.docker.stack.namespace": "st"}}},
		})
		jsonEq(t, "b attachments", serviceOf(t, st, "b").TaskTemplate.Networks, []swarm.NetworkAttachmentConfig{{Target: "st_default", Aliases: []string{"b"}}})
	})
	t.Run("no default network when every service lists its networks", func(t *testing.T) {
		st := stackOf(t, "services:\n  a:\n    image: x\n    networks: [front]\nnetworks:\n  front: {}\n")
		if len(st.Networks) != 1 || st.Networks[0].Name != "st_front" {
			t.Errorf("networks %+v", st.Networks)
		}
	})
	t.Run("every network option, explicit name, aliases and driver opts", func(t *testing.T) {
		st := stackOf(t, `services:
  a:
    image: x
    networks:
      back:
        aliases: [db, primary]
        driver_opts: {com.example.opt: "1"}
      ext: {}
      host: {}
networks:
  back:
    name: the-back
    driver: overlay
    driver_opts: {encrypted: ""}
    attachable: true
    internal: true
    labels: [team=a]
    ipam:
      driver: default
      config: [{subnet: 10.10.0.0/24, gateway: 10.10.0.1}]
  ext:
    external: true
  host:
    external: true
    name: host
`)
		jsonEq(t, "networks", st.Networks, []Network{
			{Name: "ext", External: true},
			{Name: "host", External: true},
			{Name: "the-back", Spec: network.CreateOptions{
				Driver: "overlay", Options: map[string]string{"encrypted": ""}, Attachable: true, Internal: true,
				Labels: map[string]string{"team": "a", "com.docker.stack.namespace": "st"},
				IPAM:   &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: "10.10.0.0/24", Gateway: "10.10.0.1"}}},
			}},
		})
		jsonEq(t, "attachments", serviceOf(t, st, "a").TaskTemplate.Networks, []swarm.NetworkAttachmentConfig{
			{Target: "ext", Aliases: []string{"a"}},
			{Target: "host"}, // not user-defined: no alias
			{Target: "the-back", Aliases: []string{"db", "primary", "a"}, DriverOpts: map[string]string{"com.example.opt": "1"}},
		})
	})
	t.Run("undefined network is an error at its line", func(t *testing.T) {
		_, err := renderYAML("services:\n  a:\n    image: x\n    networks:\n      - front\n")
		wantError(t, err, "docker-compose.yml", 5, `undefined network "front"`)
	})
	t.Run("local-only driver is refused", func(t *testing.T) {
		_, err := renderYAML("services:\n  a:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n    driver: bridge\n")
		wantError(t, err, "docker-compose.yml", 7, "bridge")
	})
}

func TestSecretsAndConfigs(t *testing.T) {
	yml := `services:
  web:
    image: nginx
    secrets:
      - db_password
      - source: api_key
        target: /etc/key
        uid: "100"
        gid: "101"
        mode: 0400
      - vault
    configs:
      - app_settings
      - source: nginx_conf
        target: /etc/nginx/nginx.conf
secrets:
  db_password:
    file: ./db_password.txt
  api_key:
    environment: API_KEY
  vault:
    external: true
    name: prod-vault
configs:
  app_settings:
    file: ./appsettings.json
    labels: {kind: settings}
  nginx_conf:
    name: nginx-main
    content: "events {}"
`
	opts := []func(*Options){
		withVars("API_KEY", "k3y"),
		withFiles(map[string]string{"./appsettings.json": `{"a":1}`}),
		func(o *Options) { o.SecretData = map[string][]byte{"db_password": []byte("s3cret")} },
	}
	st := stackOf(t, yml, opts...)
	h := func(s string) string { return contentName(nil, "", []byte(s)) }
	nsKey := func(key string, extra ...string) map[string]string {
		m := map[string]string{"com.docker.stack.namespace": "st", "swarm.swarmops.io/compose-key": key}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	jsonEq(t, "secrets", st.Secrets, []Secret{
		{Key: "api_key", Name: "st_api_key" + h("k3y"), Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "st_api_key" + h("k3y"), Labels: nsKey("api_key")}, Data: []byte("k3y")}},
		{Key: "db_password", Name: "st_db_password" + h("s3cret"), Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "st_db_password" + h("s3cret"), Labels: nsKey("db_password")}, Data: []byte("s3cret")}},
		{Key: "vault", Name: "prod-vault", External: true},
	})
	jsonEq(t, "configs", st.Configs, []Config{
		{Key: "app_settings", Name: "st_app_settings" + h(`{"a":1}`), Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "st_app_settings" + h(`{"a":1}`), Labels: nsKey("app_settings", "kind", "settings")}, Data: []byte(`{"a":1}`)}},
		{Key: "nginx_conf", Name: "nginx-main" + h("events {}"), Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "nginx-main" + h("events {}"), Labels: nsKey("nginx_conf")}, Data: []byte("events {}")}},
	})
	c := serviceOf(t, st, "web").TaskTemplate.ContainerSpec
	jsonEq(t, "secret refs (sorted by name, by name only)", c.Secrets, []*swarm.SecretReference{
		{SecretName: "prod-vault", File: &swarm.SecretReferenceFileTarget{Name: "/run/secrets/vault", UID: "0", GID: "0", Mode: 0o444}},
		{SecretName: "st_api_key" + h("k3y"), File: &swarm.SecretReferenceFileTarget{Name: "/etc/key", UID: "100", GID: "101", Mode: 0o400}},
		{SecretName: "st_db_password" + h("s3cret"), File: &swarm.SecretReferenceFileTarget{Name: "/run/secrets/db_password", UID: "0", GID: "0", Mode: 0o444}},
	})
	jsonEq(t, "config refs", c.Configs, []*swarm.ConfigReference{
		{ConfigName: "nginx-main" + h("events {}"), File: &swarm.ConfigReferenceFileTarget{Name: "/etc/nginx/nginx.conf", UID: "0", GID: "0", Mode: 0o444}},
		{ConfigName: "st_app_settings" + h(`{"a":1}`), File: &swarm.ConfigReferenceFileTarget{Name: "/app_settings", UID: "0", GID: "0", Mode: 0o444}},
	})

	t.Run("new data gives a new name, a new spec hash and a new revision", func(t *testing.T) {
		st2 := stackOf(t, yml, append(opts, func(o *Options) { o.SecretData = map[string][]byte{"db_password": []byte("rotated")} })...)
		if st2.Secrets[1].Name == st.Secrets[1].Name || st2.Services[0].Hash == st.Services[0].Hash || st2.Revision == st.Revision {
			t.Error("rotating a secret did not change its name, the service hash and the revision")
		}
	})
	errs := map[string]struct {
		yml  string
		line int
		frag string
	}{
		"secret without any data source": {
			yml:  "services:\n  web:\n    image: x\nsecrets:\n  pw:\n    file: pw.txt\n",
			line: 6, frag: `secret "pw"`,
		},
		"undefined secret reference": {
			yml:  "services:\n  web:\n    image: x\n    secrets: [pw]\n",
			line: 4, frag: `undefined secret "pw"`,
		},
		"undefined config reference": {
			yml:  "services:\n  web:\n    image: x\n    configs:\n      - source: cfg\n",
			line: 5, frag: `undefined config "cfg"`,
		},
		"secret from an unset variable": {
			yml:  "services:\n  web:\n    image: x\nsecrets:\n  pw:\n    environment: PW\n",
			line: 6, frag: `"PW" is not set`,
		},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			_, err := renderYAML(tc.yml)
			wantError(t, err, "docker-compose.yml", tc.line, tc.frag)
		})
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	core := "services:\n  web:\n    image: nginx\n"
	cases := map[string]struct {
		files []string
		vars  map[string]string
		file  string
		line  int
		frags []string
	}{
		"YAML syntax error": {
			files: []string{core, "services:\n  web:\n    image: 'x\n    user: y\n"},
			file:  "over.yml", frags: []string{"invalid YAML", "line 3"},
		},
		"tab indentation": {
			files: []string{"services:\n\tweb: {}\n"},
			file:  "docker-compose.yml", line: 2,
		},
		"duplicate key": {
			files: []string{core, "services:\n  web:\n    image: x\n  web:\n    image: y\n"},
			file:  "over.yml", line: 4, frags: []string{"already defined"},
		},
		"unknown key": {
			files: []string{core, "services:\n  web:\n    imagee: x\n"},
			file:  "over.yml", line: 3, frags: []string{`unknown key "imagee"`},
		},
		"wrong type": {
			files: []string{core, "services:\n  web:\n    ports: 80\n"},
			file:  "over.yml", line: 3, frags: []string{"services.web.ports must be a array"},
		},
		"wrong scalar type found while interpolating": {
			files: []string{core, "services:\n  web:\n    deploy:\n      replicas: many\n"},
			file:  "over.yml", line: 4, frags: []string{"replicas"},
		},
		"required variable": {
			files: []string{core, "services:\n  web:\n    image: nginx:${TAG:?set TAG to the release}\n"},
			file:  "over.yml", line: 3, frags: []string{"TAG", "set TAG to the release"},
		},
		"service without image": {
			files: []string{core, "services:\n  worker:\n    command: [run]\n"},
			file:  "over.yml", line: 2, frags: []string{`"worker"`, "no image"},
		},
		"invalid image reference": {
			files: []string{"services:\n  web:\n    image: Nginx:Latest\n"},
			file:  "docker-compose.yml", line: 3, frags: []string{"invalid image reference"},
		},
		"undefined network reference in an override": {
			files: []string{core, "services:\n  web:\n    networks: [missing]\n"},
			file:  "over.yml", line: 3, frags: []string{`undefined network "missing"`},
		},
		"include is refused": {
			files: []string{"include: [other.yml]\nservices:\n  web:\n    image: x\n"},
			file:  "docker-compose.yml", line: 1, frags: []string{"include"},
		},
		"top level is not a mapping": {
			files: []string{"- just\n- a list\n"},
			file:  "docker-compose.yml",
		},
		"different versions": {
			files: []string{"version: '3.8'\n" + core, "version: '3.9'\nservices: {}\n"},
			file:  "over.yml", line: 1, frags: []string{"3.9", "3.8"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			files := []File{{Name: "docker-compose.yml", Content: []byte(tc.files[0])}}
			if len(tc.files) > 1 {
				files = append(files, File{Name: "over.yml", Content: []byte(tc.files[1])})
			}
			st, err := Render(files, Options{StackName: "st", Variables: tc.vars})
			if st != nil {
				t.Error("a partial stack was returned with the error")
			}
			wantError(t, err, tc.file, tc.line, tc.frags...)
		})
	}
	t.Run("invalid stack name", func(t *testing.T) {
		_, err := Render([]File{{Name: "a.yml", Content: []byte(core)}}, Options{StackName: "Bad Name"})
		if err == nil || !strings.Contains(err.Error(), "stack name") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no files", func(t *testing.T) {
		if _, err := Render(nil, Options{StackName: "st"}); err == nil {
			t.Error("no error")
		}
	})
}

func TestInterpolation(t *testing.T) {
	yml := "services:\n  web:\n    image: nginx:${TAG}\n    environment: [\"MODE=${MODE:-prod}\", \"LITERAL=$$HOME\"]\n"
	st := stackOf(t, yml, withVars("TAG", "1.27"))
	c := serviceOf(t, st, "web").TaskTemplate.ContainerSpec
	if c.Image != "nginx:1.27" {
		t.Errorf("image %q", c.Image)
	}
	jsonEq(t, "env", c.Env, []string{"LITERAL=$HOME", "MODE=prod"})

	t.Run("unset variable: empty string and a warning, as stack deploy", func(t *testing.T) {
		st := stackOf(t, "services:\n  web:\n    image: nginx\n    environment: [\"A=${UNSET}\"]\n")
		if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], `"UNSET" variable is not set`) {
			t.Errorf("warnings %q", st.Warnings)
		}
	})
}

// TestEncodings: the same file saved by different editors renders the same.
func TestEncodings(t *testing.T) {
	text := "# numbers\nservices:\n  web:\n    image: nginx\n    command: [\"echo\", \"héllo ✓\"]\n    healthcheck:\n      test: |\n        curl -f http://localhost/\n"
	want := stackOf(t, text)
	utf16le := func(s string, bom bool) []byte {
		var b []byte
		if bom {
			b = []byte{0xFF, 0xFE}
		}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	utf16be := func(s string) []byte {
		b := []byte{0xFE, 0xFF}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u>>8), byte(u))
		}
		return b
	}
	crlf := strings.ReplaceAll(text, "\n", "\r\n")
	cases := map[string][]byte{
		"UTF-8 with BOM":             append([]byte{0xEF, 0xBB, 0xBF}, text...),
		"CRLF":                       []byte(crlf),
		"UTF-16LE with BOM":          utf16le(text, true),
		"UTF-16LE with BOM and CRLF": utf16le(crlf, true),
		"UTF-16BE with BOM and CRLF": utf16be(crlf),
		"UTF-16LE without BOM":       utf16le(text, false),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			st, err := Render([]File{{Name: "docker-compose.yml", Content: content}}, Options{StackName: "st"})
			if err != nil {
				t.Fatal(err)
			}
			if st.Revision != want.Revision {
				jsonEq(t, "stack", st, want)
			}
		})
	}
	t.Run("invalid UTF-8 is an error naming the file", func(t *testing.T) {
		_, err := Render([]File{{Name: "bad.yml", Content: []byte("services:\n  web:\n    image: \xff\xfe\xfd\n")}}, Options{StackName: "st"})
		wantError(t, err, "bad.yml", 0, "UTF")
	})
}

func TestVersionWarnsOnEveryRender(t *testing.T) {
	for i := 0; i < 2; i++ {
		st := stackOf(t, "version: \"3.8\"\nservices:\n  web:\n    image: nginx\n")
		jsonEq(t, "warnings", st.Warnings, []string{`docker-compose.yml: the top-level key "version" is obsolete and ignored`})
	}
}

// TestWarningsNeverReachStderr: compose-go's logrus warnings are captured,
// and the global logger is left as it was.
func TestWarningsNeverReachStderr(t *testing.T) {
	var buf bytes.Buffer
	std := logrus.StandardLogger()
	old := std.Out
	std.SetOutput(&buf)
	defer std.SetOutput(old)
	st := stackOf(t, "services:\n  web:\n    image: nginx\n    environment: [\"A=${NOPE}\"]\n    read_only: yes\n")
	if buf.Len() != 0 {
		t.Errorf("logged to the logger's output: %s", buf.String())
	}
	if len(st.Warnings) == 0 {
		t.Error("no warnings captured")
	}
	logrus.Warn("after render")
	if !strings.Contains(buf.String(), "after render") {
		t.Error("logger output was not restored")
	}
}

func TestDeterministic(t *testing.T) {
	yml := `services:
  web:
    image: nginx
    environment: {Z: "1", A: "2", M: "3", B: "4"}
    labels: {z: "1", a: "2"}
    extra_hosts: [b:10.0.0.2, a:10.0.0.1, c:10.0.0.3]
    ulimits: {nproc: 1, nofile: 2, core: 3}
    networks: [n3, n1, n2]
    secrets: [s2, s1]
    volumes: [v2:/b, v1:/a, v3:/c]
    ports: ["3:3", "1:1", "2:2"]
networks: {n1: {}, n2: {}, n3: {}}
volumes: {v1: {}, v2: {}, v3: {}}
secrets: {s1: {file: s1}, s2: {file: s2}}
`
	var first []byte
	for i := 0; i < 20; i++ {
		st := stackOf(t, yml, withFiles(map[string]string{"s1": "1", "s2": "2"}))
		b, _ := json.Marshal(st)
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("render %d differs", i)
		}
	}
}

// TestMergedYAML: the merged YAML of several files renders like the files.
func TestMergedYAML(t *testing.T) {
	files := numbersFiles(t, "docker-compose.yml", "prod-full.yml", "v5.yml")
	merged, err := MergedYAML(files, Options{StackName: "numbers"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"numbers-api:v5", "Broken: \"false\"", "numbers-prod", "start-first"} {
		if !bytes.Contains(merged, []byte(want)) {
			t.Errorf("merged YAML lacks %q:\n%s", want, merged)
		}
	}
	a, err := Render(files, Options{StackName: "numbers"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render([]File{{Name: "stack.yml", Content: merged}}, Options{StackName: "numbers"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision != b.Revision {
		jsonEq(t, "merged stack", b.Services, a.Services)
	}
	if _, err := MergedYAML([]File{{Name: "x.yml", Content: []byte("services: [")}}, Options{StackName: "numbers"}); err == nil {
		t.Error("MergedYAML accepted broken YAML")
	}
}

// TestNumbersScenario checks the seed scenario's files for what the
// operator's samples and integration tests rely on.
func TestNumbersScenario(t *testing.T) {
	render := func(names ...string) *Stack {
		t.Helper()
		st, err := Render(numbersFiles(t, names...), Options{StackName: "numbers"})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Warnings) != 0 {
			t.Errorf("warnings: %q", st.Warnings)
		}
		return st
	}
	step1 := render("docker-compose.yml", "prod.yml")
	api, web := serviceOf(t, step1, "numbers-api"), serviceOf(t, step1, "numbers-web")
	if *api.Mode.Replicated.Replicas != 6 || web.Mode.Global == nil {
		t.Errorf("modes: api %+v web %+v", api.Mode, web.Mode)
	}
	jsonEq(t, "web port", web.EndpointSpec.Ports, []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 80, PublishMode: "host"}})
	jsonEq(t, "networks", step1.Networks, []Network{{Name: "numbers-prod", Spec: network.CreateOptions{Driver: "overlay", Labels: map[string]string{"com.docker.stack.namespace": "numbers"}}}})
	jsonEq(t, "web env", web.TaskTemplate.ContainerSpec.Env, []string{"RngApi__Url=http://numbers-api/rng"})
	if api.TaskTemplate.Networks[0].Aliases[0] != "numbers-api" {
		t.Error("the api is not reachable as numbers-api")
	}
	if api.UpdateConfig != nil {
		t.Error("step 1 must use Swarm's default update config")
	}

	bad := render("docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "v5-bad.yml")
	good := render("docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "prod-rollback-config.yml", "v5.yml")
	if serviceOf(t, bad, "numbers-api").TaskTemplate.ContainerSpec.Env != nil {
		t.Error("v5-bad must lack the api setting")
	}
	jsonEq(t, "v5 api env", serviceOf(t, good, "numbers-api").TaskTemplate.ContainerSpec.Env, []string{"Broken=false"})

	full := render("docker-compose.yml", "prod-full.yml", "v5.yml")
	jsonEq(t, "prod-full.yml equals the four prod files", full, good)
	raw, err := os.ReadFile(filepath.Join(numbersDir, "prod-full.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte{0xFF, 0xFE}) || !bytes.Contains(raw, []byte{'\r', 0, '\n', 0}) {
		t.Error("prod-full.yml must stay UTF-16LE with BOM and CRLF")
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	files := numbersFiles(t, "docker-compose.yml", "prod.yml")
	a, err := c.Render(files, Options{StackName: "numbers"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Render(numbersFiles(t, "docker-compose.yml", "prod.yml"), Options{StackName: "numbers"})
	if a != b {
		t.Error("identical inputs missed the cache")
	}
	other, _ := c.Render(files, Options{StackName: "numbers", Variables: map[string]string{"X": "1"}})
	if other == a {
		t.Error("different variables hit the same entry")
	}
	if _, err := c.Render(files, Options{StackName: "other"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Render(files, Options{StackName: "numbers"}); again == a {
		t.Error("least recently used entry was not evicted")
	}
	if _, err := c.Render([]File{{Name: "x.yml", Content: []byte("services: [")}}, Options{StackName: "numbers"}); err == nil {
		t.Error("error not returned through the cache")
	}

	t.Run("a changed file behind ReadFile invalidates the hit", func(t *testing.T) {
		data := "one"
		opts := Options{StackName: "st", ReadFile: func(string) ([]byte, error) { return []byte(data), nil }}
		f := []File{{Name: "a.yml", Content: []byte("services:\n  web:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    file: c.txt\n")}}
		first, _ := c.Render(f, opts)
		if hit, _ := c.Render(f, opts); hit != first {
			t.Error("unchanged file missed")
		}
		data = "two"
		second, err := c.Render(f, opts)
		if err != nil || second == first || string(second.Configs[0].Spec.Data) != "two" {
			t.Errorf("stale hit: %v", err)
		}
		opts.ReadFile = func(string) ([]byte, error) { return nil, errors.New("gone") }
		if _, err := c.Render(f, opts); err == nil {
			t.Error("unreadable file served from cache")
		}
	})
	t.Run("an optional env_file that appears invalidates the hit", func(t *testing.T) {
		files := map[string]string{}
		opts := Options{StackName: "st", ReadFile: func(p string) ([]byte, error) {
			if d, ok := files[p]; ok {
				return []byte(d), nil
			}
			return nil, errors.New("missing")
		}}
		f := []File{{Name: "a.yml", Content: []byte("services:\n  web:\n    image: x\n    env_file: [{path: extra.env, required: false}]\n")}}
		first, _ := c.Render(f, opts)
		files["extra.env"] = "A=1"
		second, err := c.Render(f, opts)
		if err != nil || second == first || len(second.Services[0].Spec.TaskTemplate.ContainerSpec.Env) != 1 {
			t.Errorf("stale hit: %v", err)
		}
	})
}

// TestHostileInputFailsFast: merge keys that fan out exponentially must not
// hang the operator (compose-go caps alias expansion; the pre-scan visits
// each merged mapping once).
func TestHostileInputFailsFast(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-a0: &a0 {image: x}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "x-a%d: &a%d {<<: [*a%d, *a%d]}\n", i, i, i-1, i-1)
	}
	b.WriteString("services:\n  web: {<<: *a40}\n")
	start := time.Now()
	_, err := renderYAML(b.String())
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
}

// TestConcurrentRender: Render and Cache are safe for concurrent use (run
// with -race).
func TestConcurrentRender(t *testing.T) {
	c := NewCache(2)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			files := numbersFiles(t, "docker-compose.yml", "prod.yml", "v2.yml")
			for j := 0; j < 3; j++ {
				st, err := c.Render(files, Options{StackName: "numbers", Variables: map[string]string{"I": fmt.Sprint(i % 3)}})
				if err != nil || len(st.Services) != 2 {
					t.Errorf("render: %v", err)
				}
				if _, err := Render(files, Options{StackName: "numbers"}); err != nil {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
}
