//go:build linux

package compose

// Differential test against the real thing: every compose file of
// testdata/differential is deployed onto a sandbox Swarm twice, once by
// `docker stack deploy` and once from the specs Render makes (networks,
// secrets, configs, then services, as the operator does), and the service,
// network, secret and config specs Swarm stores for the two are compared.
// Deploying both lets Swarm apply its defaults to both alike; what remains to
// normalise is what legitimately differs: IDs, stack names, the hash suffix
// of our secret and config names, and the deliberate differences of doc.go.
// Where the sandbox's dockerd is too old to store a field, the create
// requests are compared instead (the CLI talks through a recording proxy).
// Files in testdata/differential/invalid must be refused by both.
//
// It needs the Swarm sandbox (root, dockerd; see internal/sandbox) and a
// docker CLI of version 27 or later (compose file format 3.13): without them
// it skips, or fails under CI=true. It starts one single-node sandbox on
// first use, so the package's other tests never wait for it (the corpus adds
// a few seconds to the package), and TestMain closes it; if the test binary
// dies instead, the daemons die with it and the next sandbox.CleanupStale
// removes the rest. -short skips it.
//
//	SWARM_DIFF_DOCKER=/path/docker   the docker CLI to compare with
//	SWARM_DIFF_DUMP=/tmp/dir         write both normalised service specs per case

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmops/swarm-operator/internal/sandbox"
)

const diffDir = "testdata/differential"

// diffVariables are the variables of both deployments: the CLI's
// environment, and Options.Variables.
var diffVariables = map[string]string{
	"DIFF_TAG":      "v1",
	"DIFF_LEVEL":    "debug",
	"DIFF_FROM_ENV": "from-the-environment",
}

// knownDeviations are the differences doc.go documents, by case and object:
// the paths under these prefixes differ, and must (so that doc.go is updated
// when stack deploy or compose-go change).
var knownDeviations = map[string]map[string][]string{
	// docker/cli forgot the mapstructure tag of ServiceConfig.OomScoreAdj
	// (27.1 to at least 28.2): stack deploy never reads oom_score_adj.
	"container": {"service <stack>_all": {
		"TaskTemplate.ContainerSpec.OomScoreAdj (sent)",
	}},
	// compose-go cleans a short-syntax volume target ("/etc/configs/" becomes
	// "/etc/configs"); stack deploy keeps it as written. The same mount to Swarm,
	// but not the same bytes: the operator writes the running spelling over an
	// existing service (internal/stack/align.go).
	"full": {"service <stack>_redis": {
		"TaskTemplate.ContainerSpec.Mounts[1].Target",
	}},
	// Several files: stack deploy's own merge against the compose spec's.
	"merge-lists": {"service <stack>_lists": {
		"EndpointSpec.Ports",                 // keyed by published port: unpublished ports collapse
		"TaskTemplate.ContainerSpec.Secrets", // keyed by source, not by target
		"TaskTemplate.ContainerSpec.Configs", // keyed by source, not by target
		"TaskTemplate.ContainerSpec.Hosts",   // duplicates kept
		"TaskTemplate.Networks[0].Aliases",   // replaced, not added
	}},
}

// diffExternal are created once in the sandbox, for the corpus' external
// networks, secrets and configs.
const (
	diffExtNet    = "diff-ext-net"
	diffExtSecret = "diff-ext-secret"
	diffExtConfig = "diff-ext-config"
)

// minDockerCLI is the first docker CLI that knows compose file format 3.13.
const minDockerCLI = 27

// diffEnv is the sandbox shared by the corpus, started by the first test
// that needs it and closed by TestMain.
var diffEnv struct {
	once   sync.Once
	err    error
	sw     *sandbox.Swarm
	node   *sandbox.Node
	cli    *client.Client
	docker string // the docker CLI
	config string // an empty DOCKER_CONFIG
	proxy  *recordingProxy
}

func TestMain(m *testing.M) {
	code := m.Run()
	if diffEnv.cli != nil {
		diffEnv.cli.Close()
	}
	if diffEnv.sw != nil {
		if err := diffEnv.sw.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "differential test: closing the sandbox:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if diffEnv.proxy != nil {
		diffEnv.proxy.Close()
	}
	if diffEnv.config != "" {
		os.RemoveAll(diffEnv.config)
	}
	os.Exit(code)
}

// prerequisite skips the test, or fails it under CI=true.
func prerequisite(t *testing.T, format string, args ...any) {
	t.Helper()
	if sandbox.InCI() {
		t.Fatalf(format+" (CI=true: a missing prerequisite is an error)", args...)
	}
	t.Skipf(format, args...)
}

// dockerCLI finds a docker CLI recent enough for the corpus: $SWARM_DIFF_DOCKER,
// /usr/local/bin/docker or docker in PATH (Debian's docker.io CLI is too old).
func dockerCLI() (string, error) {
	var tried []string
	for _, c := range []string{os.Getenv("SWARM_DIFF_DOCKER"), "/usr/local/bin/docker", "docker"} {
		if c == "" {
			continue
		}
		p, err := exec.LookPath(c)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", c, err))
			continue
		}
		out, err := exec.Command(p, "version", "--format", "{{.Client.Version}}").Output()
		v := strings.TrimSpace(string(out))
		if err != nil && v == "" {
			tried = append(tried, fmt.Sprintf("%s: docker version: %v", p, err))
			continue
		}
		major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
		if major < minDockerCLI {
			tried = append(tried, fmt.Sprintf("%s is version %s", p, v))
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no docker CLI of version %d or later (compose file format 3.13); set SWARM_DIFF_DOCKER: %s", minDockerCLI, strings.Join(tried, "; "))
}

func differentialSandbox(t *testing.T) {
	t.Helper()
	sandbox.SkipOrFail(t)
	docker, err := dockerCLI()
	if err != nil {
		prerequisite(t, "%v", err)
	}
	diffEnv.once.Do(func() {
		diffEnv.docker = docker
		diffEnv.err = startDiffSandbox()
	})
	if diffEnv.err != nil {
		t.Fatalf("differential sandbox: %v", diffEnv.err)
	}
}

func startDiffSandbox() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logf := func(format string, args ...any) {
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}
	}
	if err := sandbox.CleanupStale(); err != nil {
		logf("sandbox.CleanupStale: %v", err)
	}
	tar, err := sandbox.NumbersImages(ctx)
	if err != nil {
		return err
	}
	sw, err := sandbox.Start(ctx, sandbox.Options{Name: "cmp", Managers: 1, ImagesTar: tar, Logf: logf})
	if err != nil {
		return err
	}
	diffEnv.sw, diffEnv.node = sw, sw.Managers()[0]
	if diffEnv.cli, err = sw.Client(diffEnv.node); err != nil {
		return err
	}
	if diffEnv.config, err = os.MkdirTemp("", "diff-docker-config-"); err != nil {
		return err
	}
	if diffEnv.proxy, err = newRecordingProxy(sw, diffEnv.node); err != nil {
		return err
	}
	c := diffEnv.cli
	if _, err := c.NetworkCreate(ctx, diffExtNet, network.CreateOptions{Driver: "overlay", Attachable: true}); err != nil {
		return err
	}
	if _, err := c.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: diffExtSecret}, Data: []byte("external")}); err != nil {
		return err
	}
	if _, err := c.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: swarm.Annotations{Name: diffExtConfig}, Data: []byte("external")}); err != nil {
		return err
	}
	return nil
}

// TestDifferentialStackDeploy compares, for each file of the corpus, what
// Swarm stores after `docker stack deploy` with what it stores for Render's
// specs.
func TestDifferentialStackDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the differential test deploys onto a sandbox Swarm")
	}
	cases, err := filepath.Glob(filepath.Join(diffDir, "*.yml"))
	if err != nil || len(cases) < 8 {
		t.Fatalf("corpus %s: %d files, %v", diffDir, len(cases), err)
	}
	differentialSandbox(t)
	for _, file := range cases {
		name := strings.TrimSuffix(filepath.Base(file), ".yml")
		files := []string{filepath.Base(file)}
		if _, err := os.Stat(filepath.Join(diffDir, "overrides", name+".yml")); err == nil {
			files = append(files, filepath.Join("overrides", name+".yml"))
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			compareDeployments(t, name, files)
		})
	}
	invalid, _ := filepath.Glob(filepath.Join(diffDir, "invalid", "*.yml"))
	for _, file := range invalid {
		name := strings.TrimSuffix(filepath.Base(file), ".yml")
		t.Run("invalid/"+name, func(t *testing.T) {
			t.Parallel()
			bothRefuse(t, name, filepath.Join("invalid", filepath.Base(file)))
		})
	}
}

// bothRefuse checks that a file Swarm refuses through stack deploy is
// refused by Render too, with an *Error naming the file.
func bothRefuse(t *testing.T, name, file string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in, err := readCase(file)
	if err != nil {
		t.Fatal(err)
	}
	_, renderErr := Render(in, diffOptions("our-inv-"+name))
	out, cliErr := stackDeploy(ctx, "cli-inv-"+name, []string{file})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := teardown(ctx, diffEnv.cli, &deployment{stack: "cli-inv-" + name}); err != nil {
			t.Logf("removing the stack: %v", err)
		}
	})
	if cliErr == nil {
		t.Errorf("docker stack deploy accepted %s: the file belongs in the corpus, not in invalid/\n%s", file, out)
	} else {
		t.Logf("docker stack deploy: %v: %s", cliErr, lastLine(out))
	}
	var e *Error
	switch {
	case renderErr == nil:
		t.Errorf("Render accepted %s, which Swarm refuses:\n%s", file, lastLine(out))
	case !errors.As(renderErr, &e) || e.File != file:
		t.Errorf("Render: want an *Error naming %s, got %T %v", file, renderErr, renderErr)
	default:
		t.Logf("Render: %v", renderErr)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func readCase(files ...string) ([]File, error) {
	var in []File
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(diffDir, f))
		if err != nil {
			return nil, err
		}
		in = append(in, File{Name: f, Content: b})
	}
	return in, nil
}

func diffOptions(stack string) Options {
	return Options{
		StackName: stack,
		Variables: diffVariables,
		ReadFile: func(p string) ([]byte, error) {
			if !filepath.IsAbs(p) {
				p = filepath.Join(diffDir, p)
			}
			return os.ReadFile(p)
		},
	}
}

// stackDeploy runs `docker stack deploy` for files (relative to diffDir) and
// returns its output.
func stackDeploy(ctx context.Context, stack string, files []string) (string, error) {
	args := []string{"stack", "deploy", "--detach=true", "--resolve-image", "never"}
	for _, f := range files {
		args = append(args, "-c", f)
	}
	cmd := exec.CommandContext(ctx, diffEnv.docker, append(args, stack)...)
	cmd.Dir = diffDir
	// Through the recording proxy, which speaks plain HTTP on loopback.
	cmd.Env = []string{"DOCKER_HOST=" + diffEnv.proxy.URL, "PATH=" + os.Getenv("PATH"), "HOME=" + diffEnv.config, "DOCKER_CONFIG=" + diffEnv.config}
	for _, k := range sortedKeys(diffVariables) {
		cmd.Env = append(cmd.Env, k+"="+diffVariables[k])
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w", strings.Join(append(args, stack), " "), err)
	}
	return string(out), nil
}

func compareDeployments(t *testing.T, name string, files []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := diffEnv.cli
	cliStack, ourStack := "cli-"+name, "our-"+name

	// Render first: an error here needs no Swarm.
	in, err := readCase(files...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Render(in, diffOptions(ourStack))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	for _, w := range st.Warnings {
		t.Logf("Render warning: %s", w)
	}

	// The CLI's deployment: deploy, record, remove (ingress ports, explicit
	// names and subnets are cluster-wide).
	out, err := stackDeploy(ctx, cliStack, files)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Creating ") {
			t.Logf("docker stack deploy says: %s", l)
		}
	}
	theirs, err := snapshot(ctx, c, cliStack, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := teardown(ctx, c, theirs); err != nil {
		t.Fatal(err)
	}

	// Ours.
	unhash := map[string]string{}
	for _, s := range st.Secrets {
		if !s.External {
			unhash[s.Name] = cutHash(s.Name)
		}
	}
	for _, s := range st.Configs {
		if !s.External {
			unhash[s.Name] = cutHash(s.Name)
		}
	}
	deployErr := deployStack(ctx, c, st)
	ours, err := snapshot(ctx, c, ourStack, unhash)
	if err == nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := teardown(ctx, c, ours); err != nil {
				t.Logf("removing our stack: %v", err)
			}
		})
	}
	if deployErr != nil {
		t.Fatalf("deploying Render's stack: %v", deployErr)
	}
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("%d services, %d networks, %d secrets, %d configs", len(theirs.services), len(theirs.networks), len(theirs.secrets), len(theirs.configs))
	// Subnets are compared where the file sets them; elsewhere Swarm
	// allocates them.
	explicitSubnets := map[string]bool{}
	for _, n := range st.Networks {
		explicitSubnets[ours.name(n.Name)] = n.Spec.IPAM != nil && len(n.Spec.IPAM.Config) > 0
	}
	if dir := os.Getenv("SWARM_DIFF_DUMP"); dir != "" {
		dump(t, filepath.Join(dir, name), theirs, ours)
	}
	known := knownDeviations[name]
	sent := requestDiffs(t, st, theirs, ours)
	compareSets(t, "service", theirs.services, ours.services, known, func(k string, a, b swarm.ServiceSpec) []pathDiff {
		return append(flatDiff(theirs.service(a), ours.service(b)), sent[k]...)
	})
	compareSets(t, "network", theirs.networks, ours.networks, known, func(_ string, a, b network.Inspect) []pathDiff {
		return flatDiff(theirs.network(a, explicitSubnets), ours.network(b, explicitSubnets))
	})
	compareSets(t, "secret", theirs.secrets, ours.secrets, known, func(_ string, a, b swarm.SecretSpec) []pathDiff {
		return flatDiff(theirs.secret(a), ours.secret(b))
	})
	compareSets(t, "config", theirs.configs, ours.configs, known, func(_ string, a, b swarm.ConfigSpec) []pathDiff {
		return flatDiff(theirs.config(a), ours.config(b))
	})
}

// compareSets matches the objects of both deployments by normalised name and
// reports every difference of their normalised forms that known does not list.
func compareSets[T any](t *testing.T, kind string, theirs, ours map[string]T, known map[string][]string, diff func(key string, theirs, ours T) []pathDiff) {
	t.Helper()
	for _, k := range sortedKeys(theirs) {
		if _, ok := ours[k]; !ok {
			t.Errorf("%s %s: created by docker stack deploy, missing from Render's stack", kind, k)
		}
	}
	for _, k := range sortedKeys(ours) {
		a, ok := theirs[k]
		if !ok {
			t.Errorf("%s %s: in Render's stack, not created by docker stack deploy", kind, k)
			continue
		}
		allowed := known[kind+" "+k]
		seen := make([]bool, len(allowed))
		var unexpected, expected []string
		for _, d := range diff(k, a, ours[k]) {
			i := slices.IndexFunc(allowed, func(p string) bool {
				return d.path == p || strings.HasPrefix(d.path, p+".") || strings.HasPrefix(d.path, p+"[")
			})
			if i < 0 {
				unexpected = append(unexpected, d.String())
				continue
			}
			seen[i] = true
			expected = append(expected, d.String())
		}
		if len(unexpected) > 0 {
			t.Errorf("%s %s: specs differ (path: docker stack deploy | compose.Render; (sent): in the create requests, where this Swarm stores nothing):\n%s", kind, k, strings.Join(unexpected, "\n"))
		}
		if len(expected) > 0 {
			t.Logf("%s %s: documented differences (doc.go):\n%s", kind, k, strings.Join(expected, "\n"))
		}
		for i, p := range allowed {
			if !seen[i] {
				t.Errorf("%s %s: %s no longer differs: update doc.go and knownDeviations", kind, k, p)
			}
		}
	}
}

// deployment is what Swarm stores for one stack.
type deployment struct {
	stack    string
	services map[string]swarm.ServiceSpec // by normalised name
	networks map[string]network.Inspect
	secrets  map[string]swarm.SecretSpec
	configs  map[string]swarm.ConfigSpec
	ids      map[string]string // object ID -> normalised name
	unhash   map[string]string // our hashed secret/config names -> stack deploy's
}

func snapshot(ctx context.Context, c *client.Client, stack string, unhash map[string]string) (*deployment, error) {
	d := &deployment{
		stack: stack, unhash: unhash, ids: map[string]string{},
		services: map[string]swarm.ServiceSpec{}, networks: map[string]network.Inspect{},
		secrets: map[string]swarm.SecretSpec{}, configs: map[string]swarm.ConfigSpec{},
	}
	label := filters.NewArgs(filters.Arg("label", labelNamespace+"="+stack))
	nets, err := c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		d.ids[n.ID] = d.name(n.Name)
		if n.Labels[labelNamespace] == stack {
			full, err := allocatedNetwork(ctx, c, n.ID)
			if err != nil {
				return nil, err
			}
			d.networks[d.name(n.Name)] = full
		}
	}
	secrets, err := c.SecretList(ctx, swarm.SecretListOptions{Filters: label})
	if err != nil {
		return nil, err
	}
	for _, s := range secrets {
		d.ids[s.ID] = d.name(s.Spec.Name)
		d.secrets[d.name(s.Spec.Name)] = s.Spec
	}
	configs, err := c.ConfigList(ctx, swarm.ConfigListOptions{Filters: label})
	if err != nil {
		return nil, err
	}
	for _, s := range configs {
		d.ids[s.ID] = d.name(s.Spec.Name)
		d.configs[d.name(s.Spec.Name)] = s.Spec
	}
	services, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: label})
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		full, _, err := c.ServiceInspectWithRaw(ctx, s.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			return nil, err
		}
		d.services[d.name(full.Spec.Name)] = full.Spec
	}
	return d, nil
}

// allocatedNetwork inspects a swarm network once the manager's allocator has
// allocated it. Until then Swarm's answer has no driver, driver options or
// IPAM (the engine reads them from the allocated state, not from the spec), so
// a network read right after its creation compares as Driver "overlay" | "".
func allocatedNetwork(ctx context.Context, c *client.Client, id string) (network.Inspect, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		n, err := c.NetworkInspect(ctx, id, network.InspectOptions{})
		if err != nil || n.Driver != "" || n.Scope != "swarm" {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("network %s (%s): not allocated by the swarm: %w", n.Name, id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// teardown removes a stack's objects, services first; networks can stay in
// use for a moment after their services are gone.
func teardown(ctx context.Context, c *client.Client, d *deployment) error {
	label := filters.NewArgs(filters.Arg("label", labelNamespace+"="+d.stack))
	services, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: label})
	if err != nil {
		return err
	}
	for _, s := range services {
		if err := c.ServiceRemove(ctx, s.ID); err != nil && !isNotFound(err) {
			return err
		}
	}
	return retry(ctx, func() error {
		var errs []string
		nets, err := c.NetworkList(ctx, network.ListOptions{Filters: label})
		if err != nil {
			return err
		}
		for _, n := range nets {
			if err := c.NetworkRemove(ctx, n.ID); err != nil && !isNotFound(err) {
				errs = append(errs, err.Error())
			}
		}
		secrets, err := c.SecretList(ctx, swarm.SecretListOptions{Filters: label})
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if err := c.SecretRemove(ctx, s.ID); err != nil && !isNotFound(err) {
				errs = append(errs, err.Error())
			}
		}
		configs, err := c.ConfigList(ctx, swarm.ConfigListOptions{Filters: label})
		if err != nil {
			return err
		}
		for _, s := range configs {
			if err := c.ConfigRemove(ctx, s.ID); err != nil && !isNotFound(err) {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("removing stack %s: %s", d.stack, strings.Join(errs, "; "))
		}
		return nil
	})
}

func transient(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"in use", "already exists", "overlaps", "conflict", "active endpoints"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "No such"))
}

// retry retries f for up to 30 s while it fails for something in use: what
// the other stack freed (ports, subnets, names, network endpoints) can take
// a moment to become free.
func retry(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// deployStack creates a rendered stack the way the operator does: networks,
// secrets and configs, then services whose references are resolved to IDs.
func deployStack(ctx context.Context, c *client.Client, st *Stack) error {
	for _, n := range st.Networks {
		if n.External {
			continue
		}
		if err := retry(ctx, func() error { _, err := c.NetworkCreate(ctx, n.Name, n.Spec); return err }); err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	secretIDs, configIDs := map[string]string{}, map[string]string{}
	for _, s := range st.Secrets {
		if s.External {
			ext, _, err := c.SecretInspectWithRaw(ctx, s.Name)
			if err != nil {
				return fmt.Errorf("external secret %s: %w", s.Name, err)
			}
			secretIDs[s.Name] = ext.ID
			continue
		}
		err := retry(ctx, func() error {
			r, err := c.SecretCreate(ctx, s.Spec)
			secretIDs[s.Name] = r.ID
			return err
		})
		if err != nil {
			return fmt.Errorf("secret %s: %w", s.Name, err)
		}
	}
	for _, s := range st.Configs {
		if s.External {
			ext, _, err := c.ConfigInspectWithRaw(ctx, s.Name)
			if err != nil {
				return fmt.Errorf("external config %s: %w", s.Name, err)
			}
			configIDs[s.Name] = ext.ID
			continue
		}
		err := retry(ctx, func() error {
			r, err := c.ConfigCreate(ctx, s.Spec)
			configIDs[s.Name] = r.ID
			return err
		})
		if err != nil {
			return fmt.Errorf("config %s: %w", s.Name, err)
		}
	}
	for _, svc := range st.Services {
		spec := deepCopy(svc.Spec)
		cs := spec.TaskTemplate.ContainerSpec
		for _, r := range cs.Secrets {
			r.SecretID = secretIDs[r.SecretName]
		}
		for _, r := range cs.Configs {
			r.ConfigID = configIDs[r.ConfigName]
		}
		if err := retry(ctx, func() error { _, err := c.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); return err }); err != nil {
			return fmt.Errorf("service %s: %w", svc.Name, err)
		}
	}
	return nil
}

func deepCopy[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

var hashSuffixLen = len("-0123456789")

func cutHash(name string) string { return name[:len(name)-hashSuffixLen] }

// name normalises an object name: our hash suffix goes, the stack prefix
// becomes "<stack>".
func (d *deployment) name(n string) string {
	if u, ok := d.unhash[n]; ok {
		n = u
	}
	if rest, ok := strings.CutPrefix(n, d.stack+"_"); ok {
		return "<stack>_" + rest
	}
	return n
}

func (d *deployment) labels(in map[string]string) map[string]string {
	out := maps.Clone(in)
	if out[labelNamespace] == d.stack {
		out[labelNamespace] = "<stack>"
	}
	// Ours only, documented: the compose key of a secret or config.
	delete(out, labelComposeKey)
	return out
}

// service normalises a stored service spec. Each step is either an ID or a
// name, or a deliberate difference documented in doc.go.
func (d *deployment) service(s swarm.ServiceSpec) swarm.ServiceSpec {
	s = deepCopy(s)
	s.Name = d.name(s.Name)
	s.Labels = d.labels(s.Labels)
	for i, n := range s.TaskTemplate.Networks {
		if name, ok := d.ids[n.Target]; ok {
			s.TaskTemplate.Networks[i].Target = name
		} else { // a request names the network
			s.TaskTemplate.Networks[i].Target = d.name(n.Target)
		}
	}
	// Both sort attachments, secrets and configs by name, which includes the
	// stack name: sort by the normalised names.
	sort.SliceStable(s.TaskTemplate.Networks, func(i, j int) bool {
		return s.TaskTemplate.Networks[i].Target < s.TaskTemplate.Networks[j].Target
	})
	if s.EndpointSpec != nil {
		// Documented: ports are sorted (stack deploy sorts by published port only).
		slices.SortStableFunc(s.EndpointSpec.Ports, func(a, b swarm.PortConfig) int {
			return strings.Compare(fmt.Sprint(a.PublishedPort, a.TargetPort, a.Protocol, a.PublishMode), fmt.Sprint(b.PublishedPort, b.TargetPort, b.Protocol, b.PublishMode))
		})
	}
	cs := s.TaskTemplate.ContainerSpec
	if cs == nil {
		return s
	}
	cs.Labels = d.labels(cs.Labels)
	for _, r := range cs.Secrets {
		r.SecretID = ""
		r.SecretName = d.name(r.SecretName)
		// Documented: a reference without target gets /run/secrets/<key>;
		// Swarm puts a relative target there too.
		if r.File != nil && !path.IsAbs(r.File.Name) {
			r.File.Name = "/run/secrets/" + r.File.Name
		}
	}
	for _, r := range cs.Configs {
		r.ConfigID = ""
		r.ConfigName = d.name(r.ConfigName)
		// Documented: a config without target gets /<key>; Swarm puts a
		// relative target under / too.
		if r.File != nil && !path.IsAbs(r.File.Name) {
			r.File.Name = "/" + r.File.Name
		}
	}
	// The same secret or config can be referenced twice (two targets): stack
	// deploy collects the references in a map, so their order varies from one
	// deploy to the next. Sort by name, then target.
	target := func(f *swarm.SecretReferenceFileTarget) string {
		if f == nil {
			return ""
		}
		return f.Name
	}
	sort.SliceStable(cs.Secrets, func(i, j int) bool {
		a, b := cs.Secrets[i], cs.Secrets[j]
		return a.SecretName < b.SecretName || a.SecretName == b.SecretName && target(a.File) < target(b.File)
	})
	sort.SliceStable(cs.Configs, func(i, j int) bool {
		a, b := cs.Configs[i], cs.Configs[j]
		return a.ConfigName < b.ConfigName || a.ConfigName == b.ConfigName &&
			target((*swarm.SecretReferenceFileTarget)(a.File)) < target((*swarm.SecretReferenceFileTarget)(b.File))
	})
	for i, m := range cs.Mounts {
		if m.Type == "volume" && m.Source != "" {
			cs.Mounts[i].Source = d.name(m.Source)
		}
		if m.VolumeOptions != nil {
			m.VolumeOptions.Labels = d.labels(m.VolumeOptions.Labels)
		}
	}
	// Documented: mounts sorted by target, extra hosts sorted.
	sort.SliceStable(cs.Mounts, func(i, j int) bool { return cs.Mounts[i].Target < cs.Mounts[j].Target })
	sort.Strings(cs.Hosts)
	return s
}

// networkView is what a stack decides about a network.
type networkView struct {
	Driver     string
	Options    map[string]string
	Labels     map[string]string
	Internal   bool
	Attachable bool
	Ingress    bool
	EnableIPv6 bool
	IPAMDriver string
	IPAMOpts   map[string]string
	Subnets    []string // only when the file sets them; else Swarm allocates
}

func (d *deployment) network(n network.Inspect, explicitSubnets map[string]bool) networkView {
	v := networkView{
		Driver: n.Driver, Options: maps.Clone(n.Options), Labels: d.labels(n.Labels),
		Internal: n.Internal, Attachable: n.Attachable, Ingress: n.Ingress, EnableIPv6: n.EnableIPv6,
		IPAMDriver: n.IPAM.Driver, IPAMOpts: n.IPAM.Options,
	}
	// Allocated by Swarm.
	delete(v.Options, "com.docker.network.driver.overlay.vxlanid_list")
	if explicitSubnets[d.name(n.Name)] {
		for _, c := range n.IPAM.Config {
			v.Subnets = append(v.Subnets, c.Subnet)
		}
	}
	return v
}

func (d *deployment) secret(s swarm.SecretSpec) swarm.SecretSpec {
	s = deepCopy(s)
	s.Name, s.Labels = d.name(s.Name), d.labels(s.Labels)
	return s
}

func (d *deployment) config(s swarm.ConfigSpec) swarm.ConfigSpec {
	s = deepCopy(s)
	s.Name, s.Labels = d.name(s.Name), d.labels(s.Labels)
	return s
}

// dump writes the normalised stored specs of both deployments, for a human
// to diff (SWARM_DIFF_DUMP=dir).
func dump(t *testing.T, dir string, theirs, ours *deployment) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for side, d := range map[string]*deployment{"stack-deploy": theirs, "render": ours} {
		for k, s := range d.services {
			b, _ := json.MarshalIndent(d.service(s), "", "  ")
			if err := os.WriteFile(filepath.Join(dir, strings.TrimPrefix(k, "<stack>_")+"."+side+".json"), append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// requestDiffs covers what this Swarm cannot store: the sandbox's dockerd
// may be older than the CLI and the client (Debian's 20.10 speaks API 1.41)
// and drops the fields it does not know (oom_score_adj, healthcheck
// start_interval, ...). For the paths that neither stored spec has, it
// compares the specs sent: the CLI's, recorded by the proxy, and Render's.
// The differences are returned by normalised service name.
func requestDiffs(t *testing.T, st *Stack, theirs, ours *deployment) map[string][]pathDiff {
	t.Helper()
	out := map[string][]pathDiff{}
	var covered []string
	for _, svc := range st.Services {
		key := ours.name(svc.Name)
		sent, ok := diffEnv.proxy.sent(theirs.stack + "_" + svc.Key)
		if !ok {
			t.Errorf("service %s: the proxy saw no create request from docker stack deploy", key)
			continue
		}
		stored := flatten(theirs.service(theirs.services[key]))
		maps.Copy(stored, flatten(ours.service(ours.services[key])))
		a, b := flatten(theirs.service(sent)), flatten(ours.service(svc.Spec))
		for _, p := range sortedKeys(mergeKeys(a, b)) {
			if _, ok := stored[p]; ok {
				continue
			}
			covered = append(covered, strings.TrimPrefix(p, "TaskTemplate.ContainerSpec."))
			va, oka := a[p]
			vb, okb := b[p]
			if !oka || !okb || va != vb {
				out[key] = append(out[key], pathDiff{p + " (sent)", or(va, oka), or(vb, okb)})
			}
		}
	}
	if len(covered) > 0 {
		slices.Sort(covered)
		t.Logf("compared in the create requests only (this Swarm does not store them): %s", strings.Join(slices.Compact(covered), ", "))
	}
	return out
}

func mergeKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func or(v string, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return v
}

// recordingProxy forwards plain HTTP on loopback to a node's TLS endpoint
// and records the service specs of create requests.
type recordingProxy struct {
	URL string
	srv *httptest.Server
	mu  sync.Mutex
	// service name -> the last spec sent to create it
	creates map[string]swarm.ServiceSpec
}

var createPath = regexp.MustCompile(`^(/v[0-9.]+)?/services/create$`)

func newRecordingProxy(sw *sandbox.Swarm, n *sandbox.Node) (*recordingProxy, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(sw.CertDir, "cert.pem"), filepath.Join(sw.CertDir, "key.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sw.CACertPEM) {
		return nil, errors.New("no CA certificate")
	}
	target, err := url.Parse(strings.Replace(n.Endpoint, "tcp://", "https://", 1))
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}
	p := &recordingProxy{creates: map[string]swarm.ServiceSpec{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && createPath.MatchString(r.URL.Path) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var spec swarm.ServiceSpec
			if err := json.Unmarshal(body, &spec); err == nil {
				p.mu.Lock()
				p.creates[spec.Name] = spec
				p.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = strings.Replace(p.srv.URL, "http://", "tcp://", 1)
	return p, nil
}

func (p *recordingProxy) sent(name string) (swarm.ServiceSpec, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.creates[name]
	return s, ok
}

func (p *recordingProxy) Close() { p.srv.Close() }

type pathDiff struct{ path, theirs, ours string }

func (d pathDiff) String() string { return fmt.Sprintf("    %s: %s | %s", d.path, d.theirs, d.ours) }

// flatDiff compares two values by their JSON, leaf by leaf, and lists the
// paths that differ. Empty objects and arrays and nulls count as absent: the
// API does not tell them apart either.
func flatDiff(a, b any) []pathDiff {
	fa, fb := flatten(a), flatten(b)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []pathDiff
	for _, k := range sortedKeys(keys) {
		va, oka := fa[k]
		vb, okb := fb[k]
		if oka && okb && va == vb {
			continue
		}
		if !oka {
			va = "(absent)"
		}
		if !okb {
			vb = "(absent)"
		}
		out = append(out, pathDiff{k, va, vb})
	}
	return out
}

func flatten(v any) map[string]string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		panic(err)
	}
	out := map[string]string{}
	var walk func(p string, x any)
	walk = func(p string, x any) {
		switch x := x.(type) {
		case nil:
		case map[string]any:
			for k, v := range x {
				walk(strings.TrimPrefix(p+"."+k, "."), v)
			}
		case []any:
			for i, v := range x {
				walk(fmt.Sprintf("%s[%d]", p, i), v)
			}
		default:
			j, _ := json.Marshal(x)
			out[p] = string(j)
		}
	}
	walk("", x)
	return out
}
