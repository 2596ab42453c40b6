package compose

import (
	"errors"
	"strings"
	"testing"
)

func ordered(o *Options) { o.OrderByDependsOn = true }

func TestOrderWaves(t *testing.T) {
	tests := map[string]struct {
		yml   string
		waves [][]string
		deps  map[string][]Dependency
		warn  string
	}{
		"migration job, api healthy, web after api (long and short form)": {
			yml: `services:
  migrate: {image: m, deploy: {mode: replicated-job}}
  api:
    image: a
    depends_on: {migrate: {condition: service_completed_successfully}}
  web:
    image: w
    depends_on: {api: {condition: service_healthy}, cache: {condition: service_started}}
  cache: {image: c}
  worker: {image: k, depends_on: [cache]}
`,
			waves: [][]string{{"st_cache", "st_migrate"}, {"st_api", "st_worker"}, {"st_web"}},
			deps: map[string][]Dependency{
				"st_api":    {{Service: "st_migrate", Condition: "service_completed_successfully"}},
				"st_web":    {{Service: "st_api", Condition: "service_healthy"}, {Service: "st_cache", Condition: "service_started"}},
				"st_worker": {{Service: "st_cache", Condition: "service_started"}},
			},
		},
		"no depends_on: one wave of every service": {
			yml:   "services: {b: {image: b}, a: {image: a}}\n",
			waves: [][]string{{"st_a", "st_b"}},
		},
		"a wave follows its latest dependency": {
			yml: `services:
  a: {image: a}
  b: {image: b, depends_on: [a]}
  c: {image: c, depends_on: [a, b]}
`,
			waves: [][]string{{"st_a"}, {"st_b"}, {"st_c"}},
		},
		"required: false on a service not in the stack is skipped with a warning": {
			yml: `services:
  a: {image: a, depends_on: {ghost: {condition: service_started, required: false}}}
`,
			waves: [][]string{{"st_a"}},
			warn:  `service "a": depends_on "ghost" (required: false) is not in the stack; ignored`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := stackOf(t, tc.yml, ordered)
			jsonEq(t, "waves", st.Waves, tc.waves)
			for _, svc := range st.Services {
				if tc.deps == nil {
					break
				}
				jsonEq(t, svc.Name+" depends on", svc.DependsOn, tc.deps[svc.Name])
			}
			if tc.warn != "" && !strings.Contains(strings.Join(st.Warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q lack %q", st.Warnings, tc.warn)
			}
		})
	}
}

func TestOrderRefusesWhatAnOrderedReleaseCannotHonour(t *testing.T) {
	tests := map[string]struct {
		yml  string
		line int
		msg  string
	}{
		"a cycle names the services on it, not those waiting on it": {
			yml: `services:
  a: {image: a, depends_on: [b]}
  b: {image: b, depends_on: [c]}
  c: {image: c, depends_on: [a]}
  d: {image: d, depends_on: [c]}
`,
			line: 2, msg: `depends_on forms a cycle among services "a", "b", "c"`,
		},
		"a dependency not in the stack": {
			yml: `services:
  api:
    image: a
    depends_on: [db]
`,
			line: 4, msg: `service "api" depends on service "db", which is not in the stack`,
		},
		"service_completed_successfully on a service that is not a job": {
			yml: `services:
  migrate: {image: m}
  api:
    image: a
    depends_on:
      migrate:
        condition: service_completed_successfully
`,
			line: 7, msg: `service "api" depends on service "migrate" with condition service_completed_successfully, but "migrate" is not a job`,
		},
		"restart: true is refused naming the field": {
			yml: `services:
  db: {image: d}
  api:
    image: a
    depends_on:
      db:
        condition: service_started
        restart: true
`,
			line: 8, msg: `service "api": depends_on "db": restart: true is not supported with updateOrder DependsOn`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := renderYAML(tc.yml, ordered)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a compose *Error, got %v", err)
			}
			if !strings.Contains(ce.Msg, tc.msg) || ce.File != "docker-compose.yml" || ce.Line != tc.line {
				t.Errorf("got %s (line %d), want line %d with %q", err, ce.Line, tc.line, tc.msg)
			}
		})
	}
}

// Parallel releases ignore depends_on as docker stack deploy does: what an ordered
// release refuses still renders, and the revision does not depend on the order.
func TestOrderIgnoredWithoutOrderByDependsOn(t *testing.T) {
	yml := `services:
  a: {image: a, depends_on: [ghost]}
`
	st, err := renderYAML(yml)
	if err != nil {
		t.Fatalf("Render without ordering: %v", err)
	}
	if st.Waves != nil || st.Services[0].DependsOn != nil {
		t.Errorf("waves %v, depends on %v: want none without ordering", st.Waves, st.Services[0].DependsOn)
	}
	plain := stackOf(t, "services: {a: {image: a}, b: {image: b, depends_on: [a]}}\n")
	withOrder := stackOf(t, "services: {a: {image: a}, b: {image: b, depends_on: [a]}}\n", ordered)
	if plain.Revision != withOrder.Revision {
		t.Errorf("revision %s with order, %s without: the order must not change it", withOrder.Revision, plain.Revision)
	}
}
