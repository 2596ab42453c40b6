package argocd

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

// The health checks and actions as Argo CD runs them: the object as the global `obj`,
// the script's return value read back. Every case of every health_test.yaml and
// action_test.yaml under swarm.swarmops.io/ runs.

const group = "swarm.swarmops.io"

// fixedNow is what os.date returns in the actions, so their output is comparable.
const fixedNow = "2026-12-01T10:00:00Z"

type healthTests struct {
	Tests []struct {
		HealthStatus struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"healthStatus"`
		InputPath string `json:"inputPath"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string `json:"inputPath"`
		Result    []struct {
			Name     string `json:"name"`
			Disabled bool   `json:"disabled"`
		} `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

func kindDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(group, "*"))
	if err != nil || len(dirs) != 4 {
		t.Fatalf("want the four kinds under %s, got %v (%v)", group, dirs, err)
	}
	return dirs
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// run executes a script with obj set and returns what it returned, as Go values.
func run(t *testing.T, script string, obj map[string]any) any {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	// Argo CD's actions stamp annotations with os.date; a fixed clock makes them comparable.
	osLib := L.GetGlobal("os").(*lua.LTable)
	L.SetField(osLib, "date", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(fixedNow))
		return 1
	}))
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoFile(script); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return fromLua(L.Get(-1))
}

func TestHealthChecks(t *testing.T) {
	for _, dir := range kindDirs(t) {
		var tests healthTests
		readYAML(t, filepath.Join(dir, "health_test.yaml"), &tests)
		if len(tests.Tests) == 0 {
			t.Fatalf("%s: no health tests", dir)
		}
		for _, tc := range tests.Tests {
			t.Run(filepath.Base(dir)+"/"+tc.InputPath, func(t *testing.T) {
				var obj map[string]any
				readYAML(t, filepath.Join(dir, tc.InputPath), &obj)
				got, _ := run(t, filepath.Join(dir, "health.lua"), obj).(map[string]any)
				if got["status"] != tc.HealthStatus.Status || got["message"] != tc.HealthStatus.Message {
					t.Fatalf("got %v %q, want %s %q", got["status"], got["message"], tc.HealthStatus.Status, tc.HealthStatus.Message)
				}
			})
		}
	}
}

// Every outcome the issue names has a fixture, with the health it must have.
func TestEveryStackOutcomeIsCovered(t *testing.T) {
	var tests healthTests
	readYAML(t, filepath.Join(group, "SwarmStack", "health_test.yaml"), &tests)
	want := map[string]string{
		"progressing.yaml": "Progressing", "completed.yaml": "Healthy", "rolled-back.yaml": "Degraded",
		"deadline-exceeded.yaml": "Degraded", "suspended.yaml": "Suspended", "compose-invalid.yaml": "Degraded",
		"rolled-back-on-request.yaml": "Healthy",
	}
	for _, tc := range tests.Tests {
		if w, ok := want[filepath.Base(tc.InputPath)]; ok {
			if tc.HealthStatus.Status != w {
				t.Fatalf("%s: %s, want %s", tc.InputPath, tc.HealthStatus.Status, w)
			}
			delete(want, filepath.Base(tc.InputPath))
		}
	}
	if len(want) > 0 {
		t.Fatalf("no health test for %v", want)
	}
}

func TestActions(t *testing.T) {
	dir := filepath.Join(group, "SwarmStack", "actions")
	var tests actionTests
	readYAML(t, filepath.Join(dir, "action_test.yaml"), &tests)
	for _, tc := range tests.DiscoveryTests {
		var obj map[string]any
		readYAML(t, filepath.Join(dir, tc.InputPath), &obj)
		got, _ := run(t, filepath.Join(dir, "discovery.lua"), obj).(map[string]any)
		if len(got) != len(tc.Result) {
			t.Fatalf("%s: actions %v, want %d", tc.InputPath, got, len(tc.Result))
		}
		for _, r := range tc.Result {
			a, _ := got[r.Name].(map[string]any)
			if a == nil || a["disabled"] != r.Disabled {
				t.Fatalf("%s: action %s is %v, want disabled=%v", tc.InputPath, r.Name, a, r.Disabled)
			}
		}
	}
	for _, tc := range tests.ActionTests {
		t.Run(tc.Action, func(t *testing.T) {
			var obj, want map[string]any
			readYAML(t, filepath.Join(dir, tc.InputPath), &obj)
			readYAML(t, filepath.Join(dir, tc.ExpectedOutputPath), &want)
			got := run(t, filepath.Join(dir, tc.Action, "action.lua"), obj)
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				g, _ := yaml.Marshal(got)
				t.Fatalf("%s gives\n%s", tc.Action, g)
			}
		})
	}
}

// normalize makes numbers comparable: YAML reads them as float64, Lua gives float64 too,
// but empty tables come back as maps.
func normalize(v any) any {
	raw, _ := yaml.Marshal(v)
	var out any
	_ = yaml.Unmarshal(raw, &out)
	return out
}

// toLua turns decoded YAML into Lua values, as Argo CD hands objects to its scripts.
func toLua(ls *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(t)
	case string:
		return lua.LString(t)
	case float64:
		return lua.LNumber(t)
	case int64:
		return lua.LNumber(t)
	case int:
		return lua.LNumber(t)
	case []any:
		tbl := ls.NewTable()
		for _, e := range t {
			tbl.Append(toLua(ls, e))
		}
		return tbl
	case map[string]any:
		tbl := ls.NewTable()
		for k, e := range t {
			tbl.RawSetString(k, toLua(ls, e))
		}
		return tbl
	}
	return lua.LString("unsupported")
}

// fromLua turns a script's result back: a table with only 1..n keys is a list.
func fromLua(v lua.LValue) any {
	switch t := v.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(t)
	case lua.LString:
		return string(t)
	case lua.LNumber:
		return float64(t)
	case *lua.LTable:
		if n := t.Len(); n > 0 {
			list := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				list = append(list, fromLua(t.RawGetInt(i)))
			}
			return list
		}
		m := map[string]any{}
		t.ForEach(func(k, val lua.LValue) { m[k.String()] = fromLua(val) })
		return m
	}
	return nil
}
