package compose

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

// stackOf renders one file named docker-compose.yml for stack "st".
func stackOf(t *testing.T, yml string, opts ...func(*Options)) *Stack {
	t.Helper()
	st, err := renderYAML(yml, opts...)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return st
}

func renderYAML(yml string, opts ...func(*Options)) (*Stack, error) {
	o := Options{StackName: "st"}
	for _, f := range opts {
		f(&o)
	}
	return Render([]File{{Name: "docker-compose.yml", Content: []byte(yml)}}, o)
}

// serviceOf returns the spec of service key.
func serviceOf(t *testing.T, st *Stack, key string) swarm.ServiceSpec {
	t.Helper()
	for _, s := range st.Services {
		if s.Key == key {
			return s.Spec
		}
	}
	t.Fatalf("no service %q in %v", key, st.Services)
	return swarm.ServiceSpec{}
}

func containerOf(t *testing.T, yml string, opts ...func(*Options)) *swarm.ContainerSpec {
	t.Helper()
	return serviceOf(t, stackOf(t, yml, opts...), "web").TaskTemplate.ContainerSpec
}

// jsonEq compares by JSON so that the tables can state expectations compactly.
func jsonEq(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got  %s\n want %s", what, g, w)
	}
}

func withVars(kv ...string) func(*Options) {
	return func(o *Options) {
		o.Variables = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			o.Variables[kv[i]] = kv[i+1]
		}
	}
}

func withFiles(files map[string]string) func(*Options) {
	return func(o *Options) {
		o.ReadFile = func(p string) ([]byte, error) {
			if d, ok := files[p]; ok {
				return []byte(d), nil
			}
			return nil, fmt.Errorf("open %s: %w", p, fs.ErrNotExist)
		}
	}
}

// wantError checks that err is an *Error at file:line whose message holds
// every fragment. line 0 means "any line".
func wantError(t *testing.T, err error, file string, line int, fragments ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	if e.File != file || (line != 0 && e.Line != line) {
		t.Errorf("error at %s:%d, want %s:%d: %v", e.File, e.Line, file, line, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

func u64(v uint64) *uint64 { return &v }
