package controllers_test

// A stack from a Flux source on the real control plane and the sandbox swarm. The
// source is a GitRepository object whose status this test writes the way
// source-controller does (an artifact URL, revision and digest), served by an HTTP
// server of the test: what is real is the operator's watch on the source, its fetch and
// digest check with Flux's fetcher, and the rollouts on Swarm. The GitRepository CRD is a
// stand-in of ours (group, kind and status subresource of Flux's, schema left open),
// installed here, so the rest of the suite runs without it.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/gittestserver"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// installGitRepositoryCRD installs the stand-in CRD once and restarts the operator, which
// watches the source kinds installed when it starts.
var installGitRepositoryCRD = sync.OnceValue(func() error {
	if dir := os.Getenv("SOURCE_CONTROLLER_ASSETS"); dir != "" {
		// Flux's own CRDs, from the module source-controller was built from.
		if _, err := envtest.InstallCRDs(bed.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(dir, "crds")}, ErrorIfPathMissing: true}); err != nil {
			return err
		}
		restartOperator()
		return nil
	}
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(bed.Config, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gitrepositories." + sourcev1.GroupVersion.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: sourcev1.GroupVersion.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: sourcev1.GitRepositoryKind, ListKind: "GitRepositoryList", Plural: "gitrepositories", Singular: "gitrepository"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: sourcev1.GroupVersion.Version, Served: true, Storage: true,
				Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
	ctx := context.Background()
	if err := c.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return err
		}
		established := false
		for _, cond := range crd.Status.Conditions {
			established = established || cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue
		}
		if established {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CRD %s not established", crd.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The manager's REST mapper learns the new kind on the restart's discovery.
	if _, err := bed.Client.RESTMapper().RESTMapping(schema.GroupKind{Group: sourcev1.GroupVersion.Group, Kind: sourcev1.GitRepositoryKind}); err != nil {
		return err
	}
	restartOperator()
	return nil
})

// gitArtifacts serves tar.gz artifacts as source-controller's storage server does.
type gitArtifacts struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string][]byte
}

func newGitArtifacts(t *testing.T) *gitArtifacts {
	g := &gitArtifacts{files: map[string][]byte{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		data, ok := g.files[r.URL.Path]
		g.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// commit publishes files as the artifact of revision rev and writes it into the
// GitRepository's status, Ready, as source-controller does after a fetch.
func (g *gitArtifacts) commit(t *testing.T, repo *sourcev1.GitRepository, rev string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	_ = gz.Close()
	sum := sha256.Sum256(buf.Bytes())
	p := fmt.Sprintf("/gitrepository/%s/%s/%s.tar.gz", repo.Namespace, repo.Name, hex.EncodeToString(sum[:8]))
	g.mu.Lock()
	g.files[p] = buf.Bytes()
	g.mu.Unlock()
	size := int64(buf.Len())
	get(t, repo)
	repo.Status.Artifact = &meta.Artifact{Path: p, URL: g.srv.URL + p, Revision: rev, Digest: "sha256:" + hex.EncodeToString(sum[:]), LastUpdateTime: metav1.Now(), Size: &size}
	repo.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.SucceededReason,
		Message: "stored artifact for revision '" + rev + "'", LastTransitionTime: metav1.Now(), ObservedGeneration: repo.Generation}}
	if err := bed.Client.Status().Update(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
}

// TestStackFromGitSource runs the Git story with the artifacts published by the test
// itself (no source-controller): the operator's watch, fetch and digest check are real.
func TestStackFromGitSource(t *testing.T) {
	ns, cluster := newNamespace(t, "gitsource")
	if err := installGitRepositoryCRD(); err != nil {
		t.Fatal(err)
	}
	git := newGitArtifacts(t)
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "platform"},
		Spec:       sourcev1.GitRepositorySpec{URL: "http://git.invalid/platform.git", Interval: metav1.Duration{Duration: time.Minute}},
	}
	if err := bed.Client.Create(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	n := 0
	gitStory(t, ns, cluster, repo.Name, func(files map[string][]byte) string {
		n++
		rev := "main@sha1:" + strings.Repeat(fmt.Sprint(n), 40)
		git.commit(t, repo, rev, files)
		return rev
	})
}

// gitStory: push a commit → Completed; push a bad release → RolledBack and not applied
// again; push the fix → Completed; delete the file path → a clear error and nothing
// removed from the swarm. push publishes a tree and returns the source revision it gets.
// Every rollout is started by the source watch: the stack's interval is an hour.
func gitStory(t *testing.T, ns string, cluster *swarmv1.SwarmCluster, repoName string, push func(map[string][]byte) string) {
	t.Helper()
	ctx := context.Background()
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sample := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(root, "config", "samples", "numbers", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tree := func(release string) map[string][]byte {
		return map[string][]byte{
			"stacks/numbers/docker-compose.yml":       sample("docker-compose.yml"),
			"stacks/numbers/prod-healthcheck.yml":     sample("prod-healthcheck.yml"),
			"stacks/numbers/prod-update-config.yml":   sample("prod-update-config.yml"),
			"stacks/numbers/release.yml":              sample(release),
			"stacks/numbers/test-speed.yml":           []byte(testbed.FastRolloutOverride),
			"stacks/numbers/README.md":                []byte("numbers, deployed by swarm-operator\n"),
			"stacks/other/docker-compose.yml":         []byte("services: {other: {image: other:v1}}\n"),
			"stacks/numbers/config/ignored-here.json": []byte("{}"),
		}
	}
	rev1 := push(tree("v2.yml"))

	path := func(name, p string) swarmv1.ComposeFile { return swarmv1.ComposeFile{Name: name, Path: &p} }
	replicas := "services: {numbers-api: {deploy: {replicas: 2}}}\n"
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				StackName: "gitops",
				SourceRef: &swarmv1.SourceReference{Kind: sourcev1.GitRepositoryKind, Name: repoName},
				Interval:  &metav1.Duration{Duration: time.Hour},
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{
					path("core", "stacks/numbers/docker-compose.yml"),
					path("health", "stacks/numbers/prod-healthcheck.yml"),
					path("update", "stacks/numbers/prod-update-config.yml"),
					{Name: "replicas", Inline: &replicas},
					path("release", "stacks/numbers/release.yml"),
					path("speed", "stacks/numbers/test-speed.yml"),
				}},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })
	const api = "gitops_numbers-api"

	// waitSource waits for the newest rollout of a source revision to end with outcome.
	waitSource := func(rev, outcome string, timeout time.Duration) {
		t.Helper()
		eventually(t, timeout, fmt.Sprintf("rollout of %s ends %s", rev, outcome), func() string {
			get(t, stack)
			if len(stack.Status.History) == 0 {
				return "no history; " + describeConditions(stack.Status.Conditions)
			}
			h := stack.Status.History[0]
			if h.SourceRevision != rev || h.Outcome != outcome {
				return fmt.Sprintf("history[0] %s %s %q; %s", h.SourceRevision, h.Outcome, h.Message, describeConditions(stack.Status.Conditions))
			}
			return ""
		})
	}

	waitSource(rev1, swarmv1.OutcomeCompleted, 3*time.Minute)
	if stack.Status.LastAppliedSourceRevision != rev1 || swarmImage(t, api) != "numbers-api:v2" {
		t.Fatalf("after the first commit: lastAppliedSourceRevision %q, image %s", stack.Status.LastAppliedSourceRevision, swarmImage(t, api))
	}

	// A bad release: Swarm rolls it back, the operator says so and does not write it again.
	rev2 := push(tree("v5-bad.yml"))
	waitSource(rev2, swarmv1.OutcomeRolledBack, 3*time.Minute)
	if c := readyCondition(t, stack); c.Reason != swarmv1.ReasonRolledBack || stack.Status.LastAppliedSourceRevision != rev1 {
		t.Fatalf("after the bad release: Ready %+v, lastAppliedSourceRevision %q", c, stack.Status.LastAppliedSourceRevision)
	}
	attempted, entries := stack.Status.LastAttemptedRevision, len(stack.Status.History)
	requestReconcile(t, stack)
	time.Sleep(3 * time.Second)
	get(t, stack)
	if stack.Status.LastAttemptedRevision != attempted || len(stack.Status.History) != entries || swarmImage(t, api) != "numbers-api:v2" {
		t.Fatalf("the rolled back release was written again: history %d -> %d, image %s", entries, len(stack.Status.History), swarmImage(t, api))
	}

	// The fix.
	rev3 := push(tree("v5.yml"))
	waitSource(rev3, swarmv1.OutcomeCompleted, 3*time.Minute)
	if stack.Status.LastAppliedSourceRevision != rev3 || swarmImage(t, api) != "numbers-api:v5" {
		t.Fatalf("after the fix: lastAppliedSourceRevision %q, image %s", stack.Status.LastAppliedSourceRevision, swarmImage(t, api))
	}

	// The file path deleted by a commit: a clear error, nothing removed from the swarm.
	files := tree("v5.yml")
	delete(files, "stacks/numbers/release.yml")
	rev4 := push(files)
	eventually(t, 30*time.Second, "the missing file is reported", func() string {
		get(t, stack)
		c := readyCondition(t, stack)
		if c.Reason != swarmv1.ReasonSourceNotFound || !strings.Contains(c.Message, "spec.compose.files[4] (release): ") ||
			!strings.Contains(c.Message, `"stacks/numbers/release.yml" is not in the artifact of GitRepository `+ns+"/"+repoName) ||
			!strings.Contains(c.Message, rev4) {
			return describeConditions(stack.Status.Conditions)
		}
		return ""
	})
	if swarmImage(t, api) != "numbers-api:v5" || stack.Status.LastAppliedSourceRevision != rev3 {
		t.Fatalf("the swarm or status changed after the path went: image %s, lastAppliedSourceRevision %q", swarmImage(t, api), stack.Status.LastAppliedSourceRevision)
	}
	svcs, err := dockerClient(t).ServiceList(ctx, swarmtypes.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmv1.LabelStackNamespace+"=gitops"))})
	if err != nil || len(svcs) != 2 {
		t.Fatalf("services of the stack: %d, %v", len(svcs), err)
	}
}

// TestStackFromFluxSourceController runs the Git story against a real Flux
// source-controller (hack/source-controller-assets.sh builds it) polling a real Git
// server (gittestserver) that the test pushes commits to with git.
func TestStackFromFluxSourceController(t *testing.T) {
	ns, cluster := newNamespace(t, "flux")
	git := startFluxGit(t)
	repo := git.gitRepository(t, ns, "platform")
	gitStory(t, ns, cluster, repo.Name, git.push)
}

// fluxGit is a repository on a Git server (gittestserver) that a real source-controller
// polls, and the test's checkout of it.
type fluxGit struct {
	t      *testing.T
	bin    string // the git command
	remote string
	work   string // the checkout push writes
}

// startFluxGit runs source-controller (hack/source-controller-assets.sh builds it) and a
// Git server until the test ends, with Flux's CRDs installed. A missing prerequisite
// skips the test, or fails it under CI.
func startFluxGit(t *testing.T) *fluxGit {
	t.Helper()
	dir := os.Getenv("SOURCE_CONTROLLER_ASSETS")
	if dir == "" {
		const why = "SOURCE_CONTROLLER_ASSETS is not set (make test sets it from hack/source-controller-assets.sh)"
		if sandbox.InCI() {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("the git command is needed to push commits: ", err)
	}
	if err := installGitRepositoryCRD(); err != nil {
		t.Fatal(err)
	}
	startSourceController(t, dir)

	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(srv.Root()) })
	srv.AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	g := &fluxGit{t: t, bin: gitBin, remote: srv.HTTPAddress() + "/platform.git", work: t.TempDir()}
	g.run(g.work, "init", "-q", "-b", "main")
	return g
}

// run runs git in dir and returns its output; an error fails the test.
func (g *fluxGit) run(dir string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// push makes files the whole tree of the checkout, commits and pushes it to main, and
// returns the revision source-controller will publish for it.
func (g *fluxGit) push(files map[string][]byte) string {
	g.t.Helper()
	entries, _ := os.ReadDir(g.work)
	for _, e := range entries {
		if e.Name() != ".git" {
			_ = os.RemoveAll(filepath.Join(g.work, e.Name()))
		}
	}
	for name, data := range files {
		p := filepath.Join(g.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	return g.commitAndPush(g.work, "release")
}

// commitAndPush commits everything changed in the checkout dir and pushes it to main.
func (g *fluxGit) commitAndPush(dir, message string) string {
	g.t.Helper()
	g.run(dir, "add", "-A")
	g.run(dir, "commit", "-q", "-m", message)
	g.run(dir, "push", "-q", g.remote, "HEAD:main")
	return "main@sha1:" + g.run(dir, "rev-parse", "HEAD")
}

// gitRepository creates the GitRepository of main that source-controller fetches every
// second.
func (g *fluxGit) gitRepository(t *testing.T, ns, name string) *sourcev1.GitRepository {
	t.Helper()
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{URL: g.remote, Interval: metav1.Duration{Duration: time.Second},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	if err := bed.Client.Create(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	return repo
}

// startSourceController runs source-controller against the test control plane until the
// test ends, serving artifacts on a loopback port.
func startSourceController(t *testing.T, dir string) {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	storage := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "source-controller"),
		"--storage-path="+t.TempDir(), "--storage-addr="+storage, "--storage-adv-addr="+storage,
		fmt.Sprintf("--metrics-addr=127.0.0.1:%d", ports[1]), fmt.Sprintf("--health-addr=127.0.0.1:%d", ports[2]),
		"--enable-leader-election=false", "--watch-all-namespaces=true", "--log-level=error")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+writeKubeconfig(t, "default"), "RUNTIME_NAMESPACE=default")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("source-controller output:\n%s", logs.String())
		}
	})
}
