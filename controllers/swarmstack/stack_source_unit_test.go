package swarmstack

// Stacks from Flux sources on the in-memory Swarm: a real HTTP server serves tar.gz
// artifacts as source-controller does, Flux's fetcher downloads and verifies them, and
// GitRepository objects live in the fake API server with the Flux scheme registered.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

// sourceEnv is a stackEnv whose API server knows Flux's kinds, with an artifact server
// and a store the reconcilers share (a restart keeps the cache directory, as on disk).
type sourceEnv struct {
	*stackEnv
	srv     *testkit.ArtifactServer
	store   *stack.ArtifactStore
	noCross bool
}

func newSourceEnv(t *testing.T) *sourceEnv {
	t.Helper()
	e := newStackEnvWith(t, stackEnvExtras{
		schemes:     []func(*runtime.Scheme) error{sourcev1.AddToScheme},
		statusKinds: []client.Object{&sourcev1.GitRepository{}},
		indexes:     reconcile.StackSourceIndexes,
	})
	store, err := stack.NewArtifactStore(stack.ArtifactStoreOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	se := &sourceEnv{stackEnv: e, srv: testkit.NewArtifactServer(t), store: store}
	e.tune = func(r *Reconciler) {
		r.Sources = stack.Sources{Store: se.store, NoCrossNamespaceRefs: se.noCross}
	}
	return se
}

func (e *sourceEnv) gitRepo(namespace, name string, art *meta.Artifact, ready metav1.ConditionStatus) {
	e.t.Helper()
	ctx := context.Background()
	repo := &sourcev1.GitRepository{}
	key := ktypes.NamespacedName{Namespace: namespace, Name: name}
	if err := e.c.Get(ctx, key, repo); err != nil {
		repo = &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: sourcev1.GitRepositorySpec{URL: "https://git.example/platform.git", Interval: metav1.Duration{Duration: time.Minute}}}
		if err := e.c.Create(ctx, repo); err != nil {
			e.t.Fatal(err)
		}
	}
	repo.Status.Artifact = art
	repo.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: ready, Reason: "Testing", Message: "set by the test", LastTransitionTime: metav1.Now()}}
	if err := e.c.Status().Update(ctx, repo); err != nil {
		e.t.Fatal(err)
	}
}

const sourceCompose = `
services:
  api:
    image: numbers-api:v1
    env_file: [./common.env]
    configs: [settings]
configs:
  settings:
    file: ./config/settings.json
`

func sourceFiles(image string) map[string]string {
	return map[string]string{
		"stacks/numbers/docker-compose.yml":   sourceCompose,
		"stacks/numbers/common.env":           "LOG_LEVEL=debug\n",
		"stacks/numbers/config/settings.json": `{"limit": 5}`,
		"stacks/numbers/release.yml":          "services: {api: {image: " + image + "}}\n",
		"stacks/other/docker-compose.yml":     "services: {other: {image: other:v1}}\n",
		"README.md":                           "not compose",
	}
}

func pathFile(name, p string) swarmv1.ComposeFile {
	return swarmv1.ComposeFile{Name: name, Path: &p}
}

// sourceStack reads two files of GitRepository "platform" in its own namespace.
func (e *sourceEnv) sourceStack(name string, mutate ...func(*swarmv1.SwarmStack)) {
	e.t.Helper()
	e.createStack(name, "", append([]func(*swarmv1.SwarmStack){func(s *swarmv1.SwarmStack) {
		s.Spec.SourceRef = &swarmv1.SourceReference{Kind: sourcev1.GitRepositoryKind, Name: "platform"}
		s.Spec.Compose.Files = []swarmv1.ComposeFile{
			pathFile("core", "stacks/numbers/docker-compose.yml"),
			pathFile("release", "stacks/numbers/release.yml"),
		}
	}}, mutate...)...)
}

func (e *sourceEnv) mustReady(name string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	e.t.Helper()
	r := e.ready(name)
	if r == nil || r.Status != status || r.Reason != reason {
		e.t.Fatalf("Ready = %+v, want %s/%s", r, status, reason)
	}
	return r
}

func TestSourceStackRollsOutFromArtifactAndRecordsItsRevision(t *testing.T) {
	e := newSourceEnv(t)
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil), metav1.ConditionTrue)
	e.sourceStack("numbers")
	e.passes("numbers", 2)
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("image %q; Ready %+v", got, e.ready("numbers"))
	}
	svc, _ := e.sw.Service("numbers_api")
	if env := strings.Join(svc.Spec.TaskTemplate.ContainerSpec.Env, ","); !strings.Contains(env, "LOG_LEVEL=debug") {
		t.Fatalf("env_file from the artifact not applied: %s", env)
	}
	cfgs, _ := e.sw.Configs(context.Background(), "")
	if len(cfgs) != 1 {
		t.Fatalf("configs %+v", cfgs)
	}
	if data, _ := e.sw.ConfigData(context.Background(), cfgs[0].ID); string(data) != `{"limit": 5}` {
		t.Fatalf("config file: from the artifact: %q", data)
	}
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	s := e.stack("numbers")
	if s.Status.LastAppliedSourceRevision != "main@sha1:1111" || s.Status.History[0].SourceRevision != "main@sha1:1111" {
		t.Fatalf("source revision not recorded: status %q, history %+v", s.Status.LastAppliedSourceRevision, s.Status.History)
	}
	// Unchanged artifact: passes read the cache, the server sees no second download.
	if n := e.srv.Downloads(); n != 1 {
		t.Fatalf("downloads = %d after several passes over one artifact, want 1", n)
	}

	// A new commit: a new rollout, its history entry beside the old one.
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:2222", sourceFiles("numbers-api:v2"), nil), metav1.ConditionTrue)
	e.passes("numbers", 2)
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	s = e.stack("numbers")
	if e.image("numbers_api") != "numbers-api:v2" || s.Status.LastAppliedSourceRevision != "main@sha1:2222" ||
		s.Status.History[0].SourceRevision != "main@sha1:2222" || s.Status.History[1].SourceRevision != "main@sha1:1111" {
		t.Fatalf("second commit: image %s, status %q, history %+v", e.image("numbers_api"), s.Status.LastAppliedSourceRevision, s.Status.History)
	}

	// A commit that changes nothing the stack reads: no write, the new source revision is
	// what is applied.
	writes := e.writes()
	files := sourceFiles("numbers-api:v2")
	files["README.md"] = "edited"
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:3333", files, nil), metav1.ConditionTrue)
	e.passes("numbers", 2)
	if e.writes() != writes {
		t.Fatalf("an unrelated commit wrote to the swarm: %v", e.sw.Writes()[writes:])
	}
	if got := e.stack("numbers").Status.LastAppliedSourceRevision; got != "main@sha1:3333" {
		t.Fatalf("lastAppliedSourceRevision %q after a commit that renders the same stack", got)
	}
}

func TestSourceNotReadyWritesNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		setup func(e *sourceEnv)
		want  string
	}{
		"the GitRepository does not exist": {func(*sourceEnv) {}, "does not exist"},
		"it has no artifact yet":           {func(e *sourceEnv) { e.gitRepo(stackNS, "platform", nil, metav1.ConditionUnknown) }, "has no artifact yet"},
		"it is not Ready": {func(e *sourceEnv) {
			e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil), metav1.ConditionFalse)
		}, "is not ready"},
		"its artifact is gone from the server (404)": {func(e *sourceEnv) {
			art := e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil)
			art.URL += ".gone"
			e.gitRepo(stackNS, "platform", art, metav1.ConditionTrue)
		}, "no longer serves it"},
		"its digest does not match the download": {func(e *sourceEnv) {
			art := e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil)
			art.Digest = "sha256:" + strings.Repeat("0", 64)
			e.gitRepo(stackNS, "platform", art, metav1.ConditionTrue)
		}, "failed to verify archive"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newSourceEnv(t)
			tc.setup(e)
			e.sourceStack("numbers")
			res, err := e.pass("numbers")
			if err != nil || res.RequeueAfter != stack.SourceRecheck {
				t.Fatalf("pass: %v, %+v: want a recheck, no error", err, res)
			}
			r := e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonSourceNotReady)
			if !strings.Contains(r.Message, tc.want) || !strings.Contains(r.Message, "GitRepository apps/platform") {
				t.Fatalf("message %q, want it to name the source and say %q", r.Message, tc.want)
			}
			if apimeta.IsStatusConditionTrue(e.stack("numbers").Status.Conditions, swarmv1.ConditionStalled) {
				t.Fatal("a source not ready yet is not Stalled: it can become ready by itself")
			}
			if w := e.sw.Writes(); len(w) != 0 {
				t.Fatalf("wrote to the swarm: %v", w)
			}
		})
	}
}

func TestSourceBrokenArtifactKeepsTheLastAppliedRevision(t *testing.T) {
	e := newSourceEnv(t)
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil), metav1.ConditionTrue)
	e.sourceStack("numbers")
	e.passes("numbers", 2)
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	writes := e.writes()

	// A tampered artifact: refused before it is unpacked, nothing changes on the swarm.
	bad := e.srv.Publish(t, "platform", "main@sha1:2222", sourceFiles("numbers-api:v2"), nil)
	bad.Digest = "sha256:" + strings.Repeat("a", 64)
	e.gitRepo(stackNS, "platform", bad, metav1.ConditionTrue)
	e.passes("numbers", 2)
	e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonSourceNotReady)

	// The file path deleted by a commit: a clear error naming it, nothing removed.
	files := sourceFiles("numbers-api:v2")
	delete(files, "stacks/numbers/release.yml")
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:3333", files, nil), metav1.ConditionTrue)
	e.passes("numbers", 2)
	r := e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonSourceNotFound)
	if !strings.Contains(r.Message, `spec.compose.files[1] (release)`) || !strings.Contains(r.Message, `"stacks/numbers/release.yml" is not in the artifact`) ||
		!strings.Contains(r.Message, "main@sha1:3333") {
		t.Fatalf("message %q", r.Message)
	}
	if e.writes() != writes || e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("the swarm changed: image %s, writes %v", e.image("numbers_api"), e.sw.Writes()[writes:])
	}
	if s := e.stack("numbers"); s.Status.LastAppliedSourceRevision != "main@sha1:1111" {
		t.Fatalf("lastAppliedSourceRevision %q, want the one still running", s.Status.LastAppliedSourceRevision)
	}
}

func TestSourcePathsNeverLeaveTheArtifact(t *testing.T) {
	for name, tc := range map[string]struct {
		files    []swarmv1.ComposeFile
		extra    map[string]string
		symlinks map[string]string
		reason   string
		want     string
	}{
		"a compose path with ..": {
			files: []swarmv1.ComposeFile{pathFile("core", "stacks/../../etc/passwd")}, reason: swarmv1.ReasonComposeInvalid,
			want: `spec.compose.files[0] (core): path "stacks/../../etc/passwd" leaves the artifact`,
		},
		"an absolute compose path": {
			files: []swarmv1.ComposeFile{pathFile("core", "/etc/passwd")}, reason: swarmv1.ReasonComposeInvalid,
			want: `spec.compose.files[0] (core): path "/etc/passwd" is absolute`,
		},
		"a config file: that climbs out": {
			files:  []swarmv1.ComposeFile{pathFile("core", "stacks/evil/docker-compose.yml")},
			extra:  map[string]string{"stacks/evil/docker-compose.yml": "services: {a: {image: a, configs: [c]}}\nconfigs: {c: {file: ../../../etc/hostname}}\n"},
			reason: swarmv1.ReasonComposeInvalid, want: `path "../../../etc/hostname" leaves the artifact`,
		},
		"an env_file through a symlink (skipped when unpacked)": {
			files:    []swarmv1.ComposeFile{pathFile("core", "stacks/evil/docker-compose.yml")},
			extra:    map[string]string{"stacks/evil/docker-compose.yml": "services: {a: {image: a, env_file: [./host.env]}}\n"},
			symlinks: map[string]string{"stacks/evil/host.env": "/etc/hostname"},
			reason:   swarmv1.ReasonComposeInvalid, want: `"stacks/evil/host.env" is not in the artifact`,
		},
		"a compose file through a symlink": {
			files:    []swarmv1.ComposeFile{pathFile("core", "stacks/link.yml")},
			symlinks: map[string]string{"stacks/link.yml": "../../../../etc/hostname"},
			reason:   swarmv1.ReasonSourceNotFound, want: `"stacks/link.yml" is not in the artifact`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newSourceEnv(t)
			files := sourceFiles("numbers-api:v1")
			for k, v := range tc.extra {
				files[k] = v
			}
			e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", files, tc.symlinks), metav1.ConditionTrue)
			e.sourceStack("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files = tc.files })
			e.passes("numbers", 2)
			r := e.mustReady("numbers", metav1.ConditionFalse, tc.reason)
			if !strings.Contains(r.Message, tc.want) {
				t.Fatalf("message %q, want %q", r.Message, tc.want)
			}
			if w := e.sw.Writes(); len(w) != 0 {
				t.Fatalf("wrote to the swarm: %v", w)
			}
		})
	}
}

func TestSourceRefBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		noCross bool
		mutate  func(s *swarmv1.SwarmStack)
		want    string
	}{
		"a path without sourceRef": {mutate: func(s *swarmv1.SwarmStack) { s.Spec.SourceRef = nil }, want: "spec.compose.files[0] (core): path needs spec.sourceRef"},
		"another namespace with --no-cross-namespace-refs": {noCross: true, mutate: func(s *swarmv1.SwarmStack) { s.Spec.SourceRef.Namespace = "flux-system" },
			want: `spec.sourceRef.namespace "flux-system": references to other namespaces are refused`},
	} {
		t.Run(name, func(t *testing.T) {
			e := newSourceEnv(t)
			e.noCross = tc.noCross
			e.gitRepo("flux-system", "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil), metav1.ConditionTrue)
			e.sourceStack("numbers", tc.mutate)
			e.passes("numbers", 2)
			r := e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonComposeInvalid)
			if !strings.Contains(r.Message, tc.want) || !apimeta.IsStatusConditionTrue(e.stack("numbers").Status.Conditions, swarmv1.ConditionStalled) {
				t.Fatalf("message %q (want %q), Stalled expected", r.Message, tc.want)
			}
			if w := e.sw.Writes(); len(w) != 0 {
				t.Fatalf("wrote to the swarm: %v", w)
			}
		})
	}
}

func TestSourceInAnotherNamespaceIsReadWhenAllowed(t *testing.T) {
	e := newSourceEnv(t)
	e.gitRepo("flux-system", "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil), metav1.ConditionTrue)
	e.sourceStack("numbers", func(s *swarmv1.SwarmStack) { s.Spec.SourceRef.Namespace = "flux-system" })
	e.passes("numbers", 2)
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("image %q, Ready %+v", got, e.ready("numbers"))
	}
}

func TestArtifactChangedPredicate(t *testing.T) {
	repo := func(rev, digest string, ready metav1.ConditionStatus) *sourcev1.GitRepository {
		r := &sourcev1.GitRepository{}
		if rev != "" {
			r.Status.Artifact = &meta.Artifact{Revision: rev, Digest: digest}
		}
		r.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: ready}}
		return r
	}
	for name, tc := range map[string]struct {
		old, new *sourcev1.GitRepository
		want     bool
	}{
		"same artifact, status rewritten": {repo("main@sha1:1", "sha256:a", metav1.ConditionTrue), repo("main@sha1:1", "sha256:a", metav1.ConditionTrue), false},
		"a new revision":                  {repo("main@sha1:1", "sha256:a", metav1.ConditionTrue), repo("main@sha1:2", "sha256:b", metav1.ConditionTrue), true},
		"a new digest, same revision":     {repo("main@sha1:1", "sha256:a", metav1.ConditionTrue), repo("main@sha1:1", "sha256:b", metav1.ConditionTrue), true},
		"a first artifact":                {repo("", "", metav1.ConditionUnknown), repo("main@sha1:1", "sha256:a", metav1.ConditionTrue), true},
		"Ready again":                     {repo("main@sha1:1", "sha256:a", metav1.ConditionFalse), repo("main@sha1:1", "sha256:a", metav1.ConditionTrue), true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := artifactChanged.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestSourceWatchFindsTheStacksOfASource(t *testing.T) {
	e := newSourceEnv(t)
	e.sourceStack("numbers")
	e.sourceStack("elsewhere", func(s *swarmv1.SwarmStack) { s.Spec.SourceRef.Namespace = "flux-system" })
	e.createStack("plain", twoServices)
	r := e.reconciler()
	got := r.stacksOfSource(sourcev1.GitRepositoryKind)(context.Background(), &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "platform"}})
	if len(got) != 1 || got[0].Name != "numbers" {
		t.Fatalf("stacks of apps/platform: %v", got)
	}
	got = r.stacksOfSource(sourcev1.GitRepositoryKind)(context.Background(), &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "platform"}})
	if len(got) != 1 || got[0].Name != "elsewhere" {
		t.Fatalf("stacks of flux-system/platform: %v", got)
	}
	if got := r.stacksOfSource(sourcev1.OCIRepositoryKind)(context.Background(), &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "platform"}}); len(got) != 0 {
		t.Fatalf("an OCIRepository of the same name is another source: %v", got)
	}
}

// releaseFromSource rolls commit 1111 (numbers-api:v1) out and lets it complete.
func (e *sourceEnv) releaseFromSource() {
	e.t.Helper()
	e.gitRepo(stackNS, "platform", e.srv.Publish(e.t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil), metav1.ConditionTrue)
	e.sourceStack("numbers")
	e.passes("numbers", 2)
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
}

// TestSourceRolledBackRevisionIsNotWrittenAgainByALaterCommit: the revision is what the
// stack renders, not the commit. A later commit that renders the rolled-back stack again
// (it touched only other files) writes nothing, records nothing and keeps RolledBack.
func TestSourceRolledBackRevisionIsNotWrittenAgainByALaterCommit(t *testing.T) {
	e := newSourceEnv(t)
	e.releaseFromSource()
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:2222", sourceFiles("numbers-api:v2"), nil), metav1.ConditionTrue)
	e.passes("numbers", 1)
	e.swarmRollsBack(t, "numbers_api")
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonRolledBack)
	before := e.stack("numbers").Status
	writes := e.writes()
	e.events()

	files := sourceFiles("numbers-api:v2")
	files["stacks/other/docker-compose.yml"] = "services: {other: {image: other:v2}}\n"
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:3333", files, nil), metav1.ConditionTrue)
	e.clk.Advance(time.Hour)
	e.passes("numbers", 3)
	if w := e.sw.Writes()[writes:]; len(w) > 0 {
		t.Fatalf("the rolled-back revision was written again for commit 3333: %+v", w)
	}
	e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonRolledBack)
	after := e.stack("numbers").Status
	if len(after.History) != len(before.History) || after.History[0].SourceRevision != "main@sha1:2222" {
		t.Fatalf("history changed: %+v, was %+v", after.History, before.History)
	}
	if after.LastAppliedSourceRevision != "main@sha1:1111" {
		t.Fatalf("lastAppliedSourceRevision %q, want the commit still running", after.LastAppliedSourceRevision)
	}
	for _, ev := range e.events() {
		if strings.Contains(ev, swarmv1.EventRolloutStarted) {
			t.Fatalf("a rollout was announced: %s", ev)
		}
	}
	// A commit that really changes the stack is written.
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:4444", sourceFiles("numbers-api:v3"), nil), metav1.ConditionTrue)
	e.passes("numbers", 1)
	if got := e.image("numbers_api"); got != "numbers-api:v3" {
		t.Fatalf("the next real change was not written: %s", got)
	}
}

// TestSourceCommitThatTouchesNoFileOfTheStackRestartsAndRecordsNothing: a commit to
// another stack's files (Portainer #10986 redeploys every stack of a repository on any
// commit) writes nothing, adds no history entry and announces no rollout; only the
// source revision in force moves on.
func TestSourceCommitThatTouchesNoFileOfTheStackRestartsAndRecordsNothing(t *testing.T) {
	e := newSourceEnv(t)
	e.releaseFromSource()
	before := e.stack("numbers").Status
	writes := e.writes()
	e.events()

	files := sourceFiles("numbers-api:v1")
	files["stacks/other/docker-compose.yml"] = "services: {other: {image: other:v2}}\n"
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:2222", files, nil), metav1.ConditionTrue)
	e.passes("numbers", 3)
	if w := e.sw.Writes()[writes:]; len(w) > 0 {
		t.Fatalf("a commit to another stack wrote to this one: %+v", w)
	}
	after := e.stack("numbers").Status
	if len(after.History) != len(before.History) || after.LastAppliedRevision != before.LastAppliedRevision {
		t.Fatalf("recorded: history %+v (was %+v), revision %s (was %s)", after.History, before.History, after.LastAppliedRevision, before.LastAppliedRevision)
	}
	if after.LastAppliedSourceRevision != "main@sha1:2222" {
		t.Fatalf("lastAppliedSourceRevision %q", after.LastAppliedSourceRevision)
	}
	if evs := e.events(); len(evs) > 0 {
		t.Fatalf("events for a commit that changed nothing of the stack: %v", evs)
	}
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
}
