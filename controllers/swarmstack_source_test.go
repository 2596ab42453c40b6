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
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/gittestserver"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/internal/testkit"
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

// gitStory: push a commit, with a SOPS-encrypted env_file and secret file → Completed,
// the decrypted values on the Swarm only; push a bad release → RolledBack and not applied
// again, not even by a later commit of files the stack does not read; push the fix →
// Completed, and a commit to another stack writes and records nothing; delete the file
// path → a clear error and nothing removed from the swarm. push publishes a tree and
// returns the source revision it gets. Every rollout is started by the source watch: the
// stack's interval is an hour.
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
	// SOPS through the source: the api's env_file and a secret's file: are encrypted with
	// age in the repository, and read relative to the first path file's directory.
	// Encrypted once: encrypting again is new ciphertext, a change to the stack's files.
	ageIdentity, ageRecipient := testkit.AgeKey(t)
	envValue, fileValue := planted("sops-env"), planted("sops-file")
	encryptedEnv := testkit.SopsEncrypt(t, "app.env", []byte("DB_PASSWORD="+envValue+"\n"), ageRecipient)
	encryptedSecret := testkit.SopsEncrypt(t, "db_password.txt", []byte(fileValue), ageRecipient)
	const sopsCompose = `services:
  numbers-api:
    env_file: [./app.env]
    secrets: [db_password]
secrets:
  db_password:
    file: ./secrets/db_password.txt
`
	tree := func(release string) map[string][]byte {
		return map[string][]byte{
			"stacks/numbers/docker-compose.yml":       sample("docker-compose.yml"),
			"stacks/numbers/prod-healthcheck.yml":     sample("prod-healthcheck.yml"),
			"stacks/numbers/prod-update-config.yml":   sample("prod-update-config.yml"),
			"stacks/numbers/release.yml":              sample(release),
			"stacks/numbers/test-speed.yml":           []byte(testbed.FastRolloutOverride),
			"stacks/numbers/sops.yml":                 []byte(sopsCompose),
			"stacks/numbers/app.env":                  encryptedEnv,
			"stacks/numbers/secrets/db_password.txt":  encryptedSecret,
			"stacks/numbers/README.md":                []byte("numbers, deployed by swarm-operator\n"),
			"stacks/other/docker-compose.yml":         []byte("services: {other: {image: other:v1}}\n"),
			"stacks/numbers/config/ignored-here.json": []byte("{}"),
		}
	}

	// An operator whose logs, at every verbosity, go to a buffer the story searches for
	// the decrypted values.
	logs, _ := startOperatorLoggingAll(t)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-keys"}, Data: map[string][]byte{"platform.agekey": []byte(ageIdentity)}})
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
					path("sops", "stacks/numbers/sops.yml"),
				}},
				Decryption: &swarmv1.Decryption{Provider: "sops", SecretRef: &swarmv1.LocalObjectReference{Name: "sops-keys"}},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })
	const api = "gitops_numbers-api"

	// settledVersions are the stack's service versions on the Swarm once no update or
	// rollback runs (Swarm bumps a version when an update's state changes too).
	settledVersions := func() map[string]uint64 {
		t.Helper()
		out := map[string]uint64{}
		eventually(t, 30*time.Second, "the stack's services settled", func() string {
			svcs, err := dockerClient(t).ServiceList(ctx, swarmtypes.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmv1.LabelStackNamespace+"=gitops"))})
			if err != nil {
				return err.Error()
			}
			clear(out)
			for _, svc := range svcs {
				if u := svc.UpdateStatus; u != nil && (u.State == swarmtypes.UpdateStateUpdating || u.State == swarmtypes.UpdateStateRollbackStarted) {
					return svc.Spec.Name + " " + string(u.State)
				}
				out[svc.Spec.Name] = svc.Version.Index
			}
			return ""
		})
		return out
	}
	// stackEvents counts the stack's Kubernetes events by reason and message (the
	// recorder counts repeats on one Event).
	stackEvents := func() map[string]int32 {
		t.Helper()
		var evs corev1.EventList
		if err := bed.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		out := map[string]int32{}
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == "SwarmStack" && e.InvolvedObject.Name == stack.Name {
				out[e.Reason+": "+e.Message] += max(e.Count, 1)
			}
		}
		return out
	}
	// untouchedCommit pushes a commit that changes only files the stack does not read,
	// waits until the operator has seen it (seen), and checks that nothing was written
	// to the Swarm and nothing recorded: history, revisions, Ready and events as before.
	untouchedCommit := func(files map[string][]byte, seen func(rev string) string) string {
		t.Helper()
		versions, events := settledVersions(), stackEvents()
		get(t, stack)
		before := stack.Status.DeepCopy()
		beforeReady := readyCondition(t, stack)
		rev := push(files)
		eventually(t, time.Minute, "the operator sees "+rev, func() string {
			get(t, stack)
			return seen(rev)
		})
		time.Sleep(2 * time.Second) // for an event or a write that would follow the pass
		get(t, stack)
		st := stack.Status
		if st.LastAttemptedRevision != before.LastAttemptedRevision || st.LastAppliedRevision != before.LastAppliedRevision ||
			len(st.History) != len(before.History) || st.History[0].SourceRevision != before.History[0].SourceRevision ||
			st.History[0].Outcome != before.History[0].Outcome {
			t.Fatalf("commit %s touching no file of the stack was recorded: lastAttempted %s -> %s, lastApplied %s -> %s, history %d -> %d entries, newest %s %s",
				rev, before.LastAttemptedRevision, st.LastAttemptedRevision, before.LastAppliedRevision, st.LastAppliedRevision,
				len(before.History), len(st.History), st.History[0].SourceRevision, st.History[0].Outcome)
		}
		if c := readyCondition(t, stack); c.Status != beforeReady.Status || c.Reason != beforeReady.Reason {
			t.Fatalf("commit %s touching no file of the stack changed Ready: %s %s -> %s %s", rev, beforeReady.Status, beforeReady.Reason, c.Status, c.Reason)
		}
		if now := settledVersions(); !maps.Equal(now, versions) {
			t.Fatalf("commit %s touching no file of the stack wrote to the Swarm: service versions %v -> %v", rev, versions, now)
		}
		for ev, n := range stackEvents() {
			if n > events[ev] {
				t.Fatalf("commit %s touching no file of the stack: event %q", rev, ev)
			}
		}
		return rev
	}
	// noPlaintext searches the stack's status, the namespace's events and the operator's
	// logs for the decrypted values and the age key.
	noPlaintext := func() {
		t.Helper()
		get(t, stack)
		status, _ := json.Marshal(stack.Status)
		var evs corev1.EventList
		if err := bed.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		events, _ := json.Marshal(evs.Items)
		if !strings.Contains(logs.String(), ns) {
			t.Fatal("no log line of the stack's namespace was captured")
		}
		for channel, text := range map[string]string{"status": string(status), "events": string(events), "logs": logs.String()} {
			for _, v := range []string{envValue, fileValue, strings.TrimSpace(ageIdentity)} {
				if strings.Contains(text, v) {
					t.Fatalf("a decrypted value or the key reached the %s", channel)
				}
			}
		}
	}

	waitSourceOutcome(t, stack, rev1, swarmv1.OutcomeCompleted)
	if stack.Status.LastAppliedSourceRevision != rev1 || swarmImage(t, api) != "numbers-api:v2" {
		t.Fatalf("after the first commit: lastAppliedSourceRevision %q, image %s", stack.Status.LastAppliedSourceRevision, swarmImage(t, api))
	}
	// The api runs with the decrypted env_file and the secret made of the decrypted file
	// (Docker does not return a secret's data: its existence is what can be seen).
	spec := inspectSwarmService(t, api).Spec.TaskTemplate.ContainerSpec
	if !slices.Contains(spec.Env, "DB_PASSWORD="+envValue) {
		t.Fatalf("the api's env has no decrypted DB_PASSWORD: %d variables", len(spec.Env))
	}
	if len(spec.Secrets) != 1 || spec.Secrets[0].File == nil || filepath.Base(spec.Secrets[0].File.Name) != "db_password" {
		var refs []string
		for _, r := range spec.Secrets {
			refs = append(refs, fmt.Sprintf("%s %+v", r.SecretName, r.File))
		}
		t.Fatalf("the api's secrets: %v", refs)
	}
	if _, _, err := dockerClient(t).SecretInspectWithRaw(ctx, spec.Secrets[0].SecretID); err != nil {
		t.Fatalf("the api's secret %s: %v", spec.Secrets[0].SecretName, err)
	}
	noPlaintext()

	// A bad release: Swarm rolls it back, the operator says so and does not write it again.
	rev2 := push(tree("v5-bad.yml"))
	waitSourceOutcome(t, stack, rev2, swarmv1.OutcomeRolledBack)
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
	// A commit that changes only files the stack does not read, the release still rolled
	// back: the rendered revision is the rolled-back one, so nothing is written or
	// recorded. The pass that saw it renders, and its inputs digest names the artifact.
	digest := stack.Status.InputsDigest
	readme := tree("v5-bad.yml")
	readme["stacks/numbers/README.md"] = []byte("numbers, deployed by swarm-operator; v5 rolled back\n")
	untouchedCommit(readme, func(string) string {
		if stack.Status.InputsDigest == digest {
			return "status.inputsDigest unchanged"
		}
		return ""
	})
	if stack.Status.LastAppliedSourceRevision != rev1 || readyCondition(t, stack).Reason != swarmv1.ReasonRolledBack || swarmImage(t, api) != "numbers-api:v2" {
		t.Fatalf("after a commit of other files: lastAppliedSourceRevision %q, Ready %+v, image %s", stack.Status.LastAppliedSourceRevision, readyCondition(t, stack), swarmImage(t, api))
	}

	// The fix.
	rev3 := push(tree("v5.yml"))
	waitSourceOutcome(t, stack, rev3, swarmv1.OutcomeCompleted)
	if stack.Status.LastAppliedSourceRevision != rev3 || swarmImage(t, api) != "numbers-api:v5" {
		t.Fatalf("after the fix: lastAppliedSourceRevision %q, image %s", stack.Status.LastAppliedSourceRevision, swarmImage(t, api))
	}

	// A commit to another stack's files: no rollout, no record; only the source revision
	// in force moves on.
	other := tree("v5.yml")
	other["stacks/other/docker-compose.yml"] = []byte("services: {other: {image: other:v2}}\n")
	rev4 := untouchedCommit(other, func(rev string) string {
		if stack.Status.LastAppliedSourceRevision != rev {
			return "lastAppliedSourceRevision " + stack.Status.LastAppliedSourceRevision
		}
		return ""
	})
	if swarmImage(t, api) != "numbers-api:v5" || readyCondition(t, stack).Reason != swarmv1.ReasonSucceeded {
		t.Fatalf("after a commit of another stack: image %s, Ready %+v", swarmImage(t, api), readyCondition(t, stack))
	}

	// The file path deleted by a commit: a clear error, nothing removed from the swarm.
	files := tree("v5.yml")
	delete(files, "stacks/numbers/release.yml")
	rev5 := push(files)
	eventually(t, 30*time.Second, "the missing file is reported", func() string {
		get(t, stack)
		c := readyCondition(t, stack)
		if c.Reason != swarmv1.ReasonSourceNotFound || !strings.Contains(c.Message, "spec.compose.files[4] (release): ") ||
			!strings.Contains(c.Message, `"stacks/numbers/release.yml" is not in the artifact of GitRepository `+ns+"/"+repoName) ||
			!strings.Contains(c.Message, rev5) {
			return describeConditions(stack.Status.Conditions)
		}
		return ""
	})
	if swarmImage(t, api) != "numbers-api:v5" || stack.Status.LastAppliedSourceRevision != rev4 {
		t.Fatalf("the swarm or status changed after the path went: image %s, lastAppliedSourceRevision %q", swarmImage(t, api), stack.Status.LastAppliedSourceRevision)
	}
	svcs, err := dockerClient(t).ServiceList(ctx, swarmtypes.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmv1.LabelStackNamespace+"=gitops"))})
	if err != nil || len(svcs) != 2 {
		t.Fatalf("services of the stack: %d, %v", len(svcs), err)
	}
	noPlaintext()
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

// waitSourceOutcome waits for the newest rollout of the stack to be that of source
// revision rev, ended with outcome.
func waitSourceOutcome(t *testing.T, stack *swarmv1.SwarmStack, rev, outcome string) {
	t.Helper()
	eventually(t, 3*time.Minute, fmt.Sprintf("rollout of %s ends %s", rev, outcome), func() string {
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
