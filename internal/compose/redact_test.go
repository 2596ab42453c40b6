package compose

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// leaks lists what of value must not appear in a message: the value, its
// quoted forms and every 4-character piece of them (an error may quote a
// fragment, such as the numeric prefix a size parser read).
func leaks(value string) []string {
	j, _ := json.Marshal(value)
	forms := []string{value, strings.TrimSpace(value), strconv.Quote(value), strconv.QuoteToASCII(value), string(j)}
	var out []string
	for _, f := range forms {
		out = append(out, f)
		r := []rune(f)
		for i := 0; i+minSecretLen <= len(r); i++ {
			piece := string(r[i : i+minSecretLen])
			if strings.ContainsAny(piece, "\"\\") && strings.Trim(piece, "\"\\") == "" {
				continue
			}
			out = append(out, piece)
		}
	}
	return out
}

func checkNoLeak(t *testing.T, what, msg, value string) {
	t.Helper()
	for _, l := range leaks(value) {
		if strings.Contains(msg, l) {
			t.Errorf("%s quotes %q of the secret value: %s", what, l, msg)
			return
		}
	}
}

// TestRenderErrorsNeverQuoteSecretValues: a value from a Kubernetes Secret that
// makes a field invalid is never quoted in the error (which reaches status,
// events and logs), while the error still names the file and the field.
func TestRenderErrorsNeverQuoteSecretValues(t *testing.T) {
	values := map[string]string{
		"plain":   "Zq9Kx7!Wv8Jm4",
		"escaped": "Zq9\"Kx7é\nWv8Jm4\t",
	}
	cases := map[string]struct {
		yml   string
		field string // what the message must still name
	}{
		"replicas":           {"services:\n  web:\n    image: nginx\n    deploy:\n      replicas: ${V}\n", "replicas"},
		"port":               {"services:\n  web:\n    image: nginx\n    ports: [\"${V}:80\"]\n", "Port"},
		"published port":     {"services:\n  web:\n    image: nginx\n    ports: [{target: 80, published: \"${V}\"}]\n", "published port"},
		"host ip":            {"services:\n  web:\n    image: nginx\n    ports: [{target: 80, host_ip: \"${V}\"}]\n", "ports"},
		"image":              {"services:\n  web:\n    image: \"nginx:${V}\"\n", "image"},
		"bind mount":         {"services:\n  web:\n    image: nginx\n    volumes: [{type: bind, source: \"${V}\", target: /x}]\n", "bind mount"},
		"short volume":       {"services:\n  web:\n    image: nginx\n    volumes: [\"${V}:/x\"]\n", "volume"},
		"restart":            {"services:\n  web:\n    image: nginx\n    restart: \"${V}\"\n", "restart"},
		"deploy mode":        {"services:\n  web:\n    image: nginx\n    deploy: {mode: \"${V}\"}\n", "mode"},
		"memory (fragment)":  {"services:\n  web:\n    image: nginx\n    deploy: {resources: {limits: {memory: \"${V}\"}}}\n", "memory"},
		"cpus":               {"services:\n  web:\n    image: nginx\n    deploy: {resources: {limits: {cpus: \"${V}\"}}}\n", "cpus"},
		"healthcheck":        {"services:\n  web:\n    image: nginx\n    healthcheck: {test: [CMD, x], interval: \"${V}\"}\n", "interval"},
		"stop grace period":  {"services:\n  web:\n    image: nginx\n    stop_grace_period: \"${V}\"\n", "stop_grace_period"},
		"ulimit":             {"services:\n  web:\n    image: nginx\n    ulimits: {nofile: \"${V}\"}\n", "ulimits"},
		"boolean":            {"services:\n  web:\n    image: nginx\n    tty: \"${V}\"\n", "tty"},
		"extra hosts":        {"services:\n  web:\n    image: nginx\n    extra_hosts: [\"${V}\"]\n", "extra_hosts"},
		"env_file path":      {"services:\n  web:\n    image: nginx\n    env_file: [\"${V}\"]\n", "env_file"},
		"secret file path":   {"services:\n  web:\n    image: nginx\nsecrets:\n  s:\n    file: \"${V}\"\n", "secret \"s\""},
		"update order":       {"services:\n  web:\n    image: nginx\n    deploy: {update_config: {order: \"${V}\"}}\n", "order"},
		"restart condition":  {"services:\n  web:\n    image: nginx\n    deploy: {restart_policy: {condition: \"${V}\"}}\n", "condition"},
		"endpoint mode":      {"services:\n  web:\n    image: nginx\n    deploy: {endpoint_mode: \"${V}\"}\n", "endpoint_mode"},
		"port mode":          {"services:\n  web:\n    image: nginx\n    ports: [{target: 80, mode: \"${V}\"}]\n", "port mode"},
		"volume type":        {"services:\n  web:\n    image: nginx\n    volumes: [{type: \"${V}\", source: /a, target: /x}]\n", "volume"},
		"healthcheck 2 keys": {"services:\n  web:\n    image: nginx\n    healthcheck: {test: [CMD, x], timeout: \"${V}\"}\n", "timeout"},
	}
	render := map[string]func([]File, Options) (*Stack, error){
		"Render": Render,
		"Cache":  NewCache(8).Render,
	}
	for vname, value := range values {
		for name, tc := range cases {
			for rname, fn := range render {
				t.Run(vname+"/"+name+"/"+rname, func(t *testing.T) {
					opts := Options{StackName: "st", Variables: map[string]string{"V": value, "OTHER": "x"}, SensitiveVariables: []string{"V"}}
					st, err := fn([]File{{Name: "a.yml", Content: []byte(tc.yml)}}, opts)
					if err == nil {
						// Some values are accepted (with a warning): those must not quote it either.
						if len(st.Warnings) == 0 {
							t.Skipf("accepted without warning")
						}
						for _, w := range st.Warnings {
							checkNoLeak(t, "warning", w, value)
						}
						return
					}
					wantError(t, err, "a.yml", 0, tc.field)
					checkNoLeak(t, "error", err.Error(), value)
				})
			}
		}
	}

	t.Run("warnings", func(t *testing.T) {
		const ip = "10.213.47.99"
		yml := "services:\n  web:\n    image: nginx\n    ports: [{target: 80, host_ip: \"${IP}\"}]\n"
		files := []File{{Name: "a.yml", Content: []byte(yml)}}
		c := NewCache(4)
		// First without, then with the sensitivity: the cache must not hand
		// back the first stack's warnings.
		open, err := c.Render(files, Options{StackName: "st", Variables: map[string]string{"IP": ip}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(open.Warnings, "\n"), ip) {
			t.Fatalf("an ordinary value is quoted as before: %q", open.Warnings)
		}
		for rname, fn := range map[string]func([]File, Options) (*Stack, error){"Render": Render, "Cache": c.Render} {
			st, err := fn(files, Options{StackName: "st", Variables: map[string]string{"IP": ip}, SensitiveVariables: []string{"IP"}})
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(st.Warnings, "\n")
			if !strings.Contains(all, "host_ip") || !strings.Contains(all, redacted) {
				t.Errorf("%s: warnings %q do not say what is ignored", rname, st.Warnings)
			}
			checkNoLeak(t, rname+" warning", all, ip)
			if got := st.Services[0].Spec.TaskTemplate.ContainerSpec; got == nil {
				t.Errorf("%s: no container spec", rname)
			}
		}
	})

	t.Run("secret data is never quoted, whatever its source", func(t *testing.T) {
		const data = "Tk8Qw!2Lp5Rz"
		image := "services:\n  web:\n    image: \"nginx:${TOKEN}\"\n    secrets: [s]\nsecrets:\n  s:\n"
		cases := map[string]struct {
			yml  string
			opts Options
		}{
			"environment: of a secret": {image + "    environment: TOKEN\n", Options{Variables: map[string]string{"TOKEN": data}}},
			"SecretData":               {image + "    file: ./x\n", Options{Variables: map[string]string{"TOKEN": data}, SecretData: map[string][]byte{"s": []byte(data)}}},
			"file read":                {image + "    file: ./x\n", Options{Variables: map[string]string{"TOKEN": data}, ReadFile: func(string) ([]byte, error) { return []byte(data + "\n"), nil }}},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				tc.opts.StackName = "st"
				_, err := Render([]File{{Name: "a.yml", Content: []byte(tc.yml)}}, tc.opts)
				wantError(t, err, "a.yml", 3, "image")
				checkNoLeak(t, "error", err.Error(), data)
			})
		}
	})

	t.Run("short values are left alone", func(t *testing.T) {
		_, err := Render([]File{{Name: "a.yml", Content: []byte("services:\n  web:\n    image: nginx\n    restart: \"${V}\"\n")}},
			Options{StackName: "st", Variables: map[string]string{"V": "abc"}, SensitiveVariables: []string{"V"}})
		wantError(t, err, "a.yml", 4, `invalid restart policy "abc"`)
	})
}

// TestLoadErrorsNeverQuoteTheEnvironmentOfASecret: a variable that a secret takes its
// data from (environment:) is secret even when the caller did not name it sensitive;
// an error of loading comes before the model that says so exists, so the files
// themselves are read for it.
func TestLoadErrorsNeverQuoteTheEnvironmentOfASecret(t *testing.T) {
	const data = "Tk8Qw!2Lp5Rz"
	yml := "services:\n  web:\n    image: nginx\n    deploy: {replicas: \"${TOKEN}\"}\n    secrets: [s]\nsecrets:\n  s:\n    environment: TOKEN\n"
	files := []File{{Name: "a.yml", Content: []byte(yml)}}
	opts := Options{StackName: "st", Variables: map[string]string{"TOKEN": data}}
	for name, fn := range map[string]func() error{
		"Render":     func() error { _, err := Render(files, opts); return err },
		"MergedYAML": func() error { _, err := MergedYAML(files, opts); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := fn()
			wantError(t, err, "a.yml", 0, "replicas")
			checkNoLeak(t, "error", err.Error(), data)
		})
	}
}

// TestRenderWarnsAboutUnsetVariables: an unset ${VAR} becomes an empty string
// with a warning naming the variable and the file (and line) that uses it.
func TestRenderWarnsAboutUnsetVariables(t *testing.T) {
	files := []File{
		{Name: "a.yml", Content: []byte("services:\n  web:\n    image: nginx\n    labels:\n      a: \"$MISSING_A\"\n      d: \"${WITH_DEFAULT:-x}\"\n      e: \"${EMPTY_DEFAULT-}\"\n      s: \"${SET}\"\n")},
		{Name: "b.yml", Content: []byte("services:\n  web:\n    environment:\n      B: \"pre-${MISSING_B}-post\"\n")},
	}
	opts := Options{StackName: "st", Variables: map[string]string{"SET": "yes"}}
	for rname, fn := range map[string]func([]File, Options) (*Stack, error){"Render": Render, "Cache": NewCache(2).Render} {
		t.Run(rname, func(t *testing.T) {
			for i := 0; i < 2; i++ { // a cache hit keeps them
				st, err := fn(files, opts)
				if err != nil {
					t.Fatal(err)
				}
				want := []*regexp.Regexp{
					regexp.MustCompile(`^a\.yml:5: .*"MISSING_A" variable is not set`),
					regexp.MustCompile(`^b\.yml:4: .*"MISSING_B" variable is not set`),
				}
				if len(st.Warnings) != len(want) {
					t.Fatalf("warnings %q, want one per unset variable", st.Warnings)
				}
				for i, re := range want {
					if !re.MatchString(st.Warnings[i]) {
						t.Errorf("warning %q does not match %s", st.Warnings[i], re)
					}
				}
				if env := st.Services[0].Spec.TaskTemplate.ContainerSpec.Env; len(env) != 1 || env[0] != "B=pre--post" {
					t.Errorf("env %q: an unset variable is an empty string", env)
				}
			}
		})
	}
}
