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
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/internal/testbed"
)

// installGitRepositoryCRD installs the stand-in CRD once and restarts the operator, which
// watches the source kinds installed when it starts.
var installGitRepositoryCRD = sync.OnceValue(func() error {
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

// TestStackFromGitSource: push a commit → Completed; push a bad release → RolledBack and
// not applied again; push the fix → Completed; delete the file path → a clear error and
// nothing removed from the swarm. Every rollout is started by the source watch: the
// stack's interval is an hour.
func TestStackFromGitSource(t *testing.T) {
	ns, cluster := newNamespace(t, "gitsource")
	if err := installGitRepositoryCRD(); err != nil {
		t.Fatal(err)
	}
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
	git := newGitArtifacts(t)
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "platform"},
		Spec:       sourcev1.GitRepositorySpec{URL: "http://git.invalid/platform.git", Interval: metav1.Duration{Duration: time.Minute}},
	}
	if err := bed.Client.Create(ctx, repo); err != nil {
		t.Fatal(err)
	}
	git.commit(t, repo, "main@sha1:1111111111111111111111111111111111111111", tree("v2.yml"))

	path := func(name, p string) swarmv1.ComposeFile { return swarmv1.ComposeFile{Name: name, Path: &p} }
	replicas := "services: {numbers-api: {deploy: {replicas: 2}}}\n"
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			StackName:  "gitops",
			SourceRef:  &swarmv1.SourceReference{Kind: sourcev1.GitRepositoryKind, Name: repo.Name},
			Interval:   &metav1.Duration{Duration: time.Hour},
			Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{
				path("core", "stacks/numbers/docker-compose.yml"),
				path("health", "stacks/numbers/prod-healthcheck.yml"),
				path("update", "stacks/numbers/prod-update-config.yml"),
				{Name: "replicas", Inline: &replicas},
				path("release", "stacks/numbers/release.yml"),
				path("speed", "stacks/numbers/test-speed.yml"),
			}},
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

	rev1 := "main@sha1:1111111111111111111111111111111111111111"
	waitSource(rev1, swarmv1.OutcomeCompleted, 3*time.Minute)
	if stack.Status.LastAppliedSourceRevision != rev1 || swarmImage(t, api) != "numbers-api:v2" {
		t.Fatalf("after the first commit: lastAppliedSourceRevision %q, image %s", stack.Status.LastAppliedSourceRevision, swarmImage(t, api))
	}

	// A bad release: Swarm rolls it back, the operator says so and does not write it again.
	rev2 := "main@sha1:2222222222222222222222222222222222222222"
	git.commit(t, repo, rev2, tree("v5-bad.yml"))
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
	rev3 := "main@sha1:3333333333333333333333333333333333333333"
	git.commit(t, repo, rev3, tree("v5.yml"))
	waitSource(rev3, swarmv1.OutcomeCompleted, 3*time.Minute)
	if stack.Status.LastAppliedSourceRevision != rev3 || swarmImage(t, api) != "numbers-api:v5" {
		t.Fatalf("after the fix: lastAppliedSourceRevision %q, image %s", stack.Status.LastAppliedSourceRevision, swarmImage(t, api))
	}

	// The file path deleted by a commit: a clear error, nothing removed from the swarm.
	rev4 := "main@sha1:4444444444444444444444444444444444444444"
	files := tree("v5.yml")
	delete(files, "stacks/numbers/release.yml")
	git.commit(t, repo, rev4, files)
	eventually(t, 30*time.Second, "the missing file is reported", func() string {
		get(t, stack)
		c := readyCondition(t, stack)
		if c.Reason != swarmv1.ReasonSourceNotFound || !strings.Contains(c.Message, "spec.compose.files[4] (release): ") ||
			!strings.Contains(c.Message, `"stacks/numbers/release.yml" is not in the artifact of GitRepository `+ns+"/platform") ||
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
