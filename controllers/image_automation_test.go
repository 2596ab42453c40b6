package controllers_test

// Image updates through Git: Flux's image automation rewrites the tag after a marker in a
// compose file and commits it; source-controller publishes the commit and the stack
// rolls it out, once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/kustomize/kyaml/fieldmeta"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// The release file of the stack in Git; %s is the ImagePolicy's namespace. The api's v5
// is healthy only with Broken=false, which v3 ignores.
const markedRelease = `services:
  numbers-api:
    image: numbers-api:v3 # {"$imagepolicy": "%s:numbers-api"}
    environment:
      - Broken=false
  numbers-web:
    image: numbers-web:v3
`

// TestImageAutomationCommitRollsOutOnceWithTheNewTag: Flux's setters move the marked tag
// of a compose file in Git from v3 to v5; through source-controller the stack rolls that
// commit out in one rollout, the api on v5 and the web untouched, and later fetches of the
// same commit and passes of the stack write nothing to the Swarm.
func TestImageAutomationCommitRollsOutOnceWithTheNewTag(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "imageauto")
	git := startFluxGit(t)
	repo := git.gitRepository(t, ns, "platform")
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	core, err := os.ReadFile(filepath.Join(root, "config", "samples", "numbers", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	release := fmt.Sprintf(markedRelease, ns)
	rev1 := git.push(map[string][]byte{
		"stacks/numbers/docker-compose.yml": core,
		"stacks/numbers/release.yml":        []byte(release),
		"stacks/numbers/test-speed.yml":     []byte(testbed.FastRolloutOverride),
	})

	path := func(name, p string) swarmv1.ComposeFile { return swarmv1.ComposeFile{Name: name, Path: &p} }
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				StackName: "imageauto",
				SourceRef: &swarmv1.SourceReference{Kind: sourcev1.GitRepositoryKind, Name: repo.Name},
				// Only the source watch and the test's requests start passes.
				Interval: &metav1.Duration{Duration: time.Hour},
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{
					path("core", "stacks/numbers/docker-compose.yml"),
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
	const api, web = "imageauto_numbers-api", "imageauto_numbers-web"
	waitSourceOutcome(t, stack, rev1, swarmv1.OutcomeCompleted)
	if img := swarmImage(t, api); img != "numbers-api:v3" {
		t.Fatalf("after the first commit the api runs %s", img)
	}
	rollouts := len(stack.Status.History)
	webBefore := inspectSwarmService(t, web)

	// The automation's own checkout, updated as its Setters strategy does (update.path
	// ./stacks) for an ImagePolicy whose latest image is numbers-api:v5.
	checkout := t.TempDir()
	git.run(checkout, "clone", "-q", "--branch", "main", git.remote, ".")
	policy := imagev1.ImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers-api"},
		Status:     imagev1.ImagePolicyStatus{LatestRef: &imagev1.ImageRef{Name: "numbers-api", Tag: "v5"}},
	}
	changed := applyImagePolicySetters(t, filepath.Join(checkout, "stacks"), policy)
	if len(changed) != 1 || changed[0] != "numbers/release.yml" {
		t.Fatalf("the setters changed %q, want only numbers/release.yml", changed)
	}
	// Only the tag moved: the file is still the compose file it was, marker included.
	got, err := os.ReadFile(filepath.Join(checkout, "stacks", "numbers", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(release, "numbers-api:v3", "numbers-api:v5", 1); string(got) != want {
		t.Fatalf("the setters wrote\n%s\nwant\n%s", got, want)
	}
	rev2 := git.commitAndPush(checkout, "Update numbers-api to v5")

	waitSourceOutcome(t, stack, rev2, swarmv1.OutcomeCompleted)
	if n := len(stack.Status.History); n != rollouts+1 {
		t.Fatalf("the image update made %d history entries, want 1: %+v", n-rollouts, stack.Status.History)
	}
	if img := swarmImage(t, api); img != "numbers-api:v5" || stack.Status.LastAppliedSourceRevision != rev2 {
		t.Fatalf("after the image update: api runs %s, lastAppliedSourceRevision %q", img, stack.Status.LastAppliedSourceRevision)
	}
	if w := inspectSwarmService(t, web); w.Version.Index != webBefore.Version.Index {
		t.Fatalf("the web was written (version %d -> %d), only the api's tag changed", webBefore.Version.Index, w.Version.Index)
	}

	// Settled: source-controller fetches the commit again and the stack passes again,
	// three times; none of it is a change.
	apiAfter := inspectSwarmService(t, api)
	for i := range 3 {
		token := fmt.Sprintf("settled-%d-%d", i, time.Now().UnixNano())
		annotate(t, repo, meta.ReconcileRequestAnnotation, token)
		eventually(t, time.Minute, "source-controller fetched main again", func() string {
			get(t, repo)
			if repo.Status.LastHandledReconcileAt != token || repo.Status.Artifact == nil || repo.Status.Artifact.Revision != rev2 {
				return fmt.Sprintf("lastHandledReconcileAt %q, artifact %+v", repo.Status.LastHandledReconcileAt, repo.Status.Artifact)
			}
			return ""
		})
		requestReconcile(t, stack)
		eventually(t, time.Minute, "a pass of the stack after the fetch", func() string {
			get(t, stack)
			if stack.Status.LastHandledReconcileAt != stack.Annotations[swarmv1.AnnotationReconcileRequestedAt] {
				return "request not handled yet: " + describeConditions(stack.Status.Conditions)
			}
			return ""
		})
	}
	if n := len(stack.Status.History); n != rollouts+1 || stack.Status.History[0].SourceRevision != rev2 {
		t.Fatalf("a later pass rolled out again: history %+v", stack.Status.History)
	}
	if c := readyCondition(t, stack); c.Status != metav1.ConditionTrue {
		t.Fatalf("settled: Ready %+v", c)
	}
	for name, before := range map[string]swarmtypes.Service{api: apiAfter, web: webBefore} {
		if now := inspectSwarmService(t, name); now.Version.Index != before.Version.Index {
			t.Fatalf("%s was written again after the rollout (version %d -> %d, image %s)", name, before.Version.Index, now.Version.Index, now.Spec.TaskTemplate.ContainerSpec.Image)
		}
	}
}

func inspectSwarmService(t *testing.T, name string) swarmtypes.Service {
	t.Helper()
	svc, ok := inspectService(t, name)
	if !ok {
		t.Fatalf("service %s is not on the swarm", name)
	}
	return svc
}

// applyImagePolicySetters updates the YAML files under dir as image-automation-controller's
// Setters strategy does, and returns the files it rewrote, relative to dir. Its update
// code cannot be imported: the Go module proxy serves image-automation-controller's API
// module only, and the code is internal/ in current releases. So this is the mechanism
// it is built on, kyaml's: "$imagepolicy" as the short hand of a setter reference, a
// setter per policy for the image and for its :tag, :name and :digest, only files that
// name the marker read (kio.ByteReader, sequence indents kept), scalar values with a
// marker set, and the changed files written back by kio.LocalPackageWriter.
func applyImagePolicySetters(t *testing.T, dir string, policies ...imagev1.ImagePolicy) []string {
	t.Helper()
	const marker = "$imagepolicy"
	fieldmeta.SetShortHandRef(marker)
	// The setters' definitions are all the schema needed; Kubernetes' own is never loaded.
	openapi.SuppressBuiltInSchemaUse()
	defs := spec.Definitions{}
	for _, p := range policies {
		ref := p.Status.LatestRef
		name := p.Namespace + ":" + p.Name
		for setter, value := range map[string]string{name: ref.String(), name + ":tag": ref.Tag, name + ":name": ref.Name, name + ":digest": ref.Digest} {
			s := spec.StringProperty()
			s.AddExtension("x-k8s-cli", map[string]any{"setter": map[string]string{"name": setter, "value": value}})
			defs[fieldmeta.SetterDefinitionPrefix+setter] = *s
		}
	}
	schema := &spec.Schema{SchemaProps: spec.SchemaProps{Definitions: defs}}

	var nodes []*yaml.RNode
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(`"`+marker+`"`)) {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		read, err := (&kio.ByteReader{Reader: bytes.NewReader(data), PreserveSeqIndent: true,
			SetAnnotations: map[string]string{kioutil.PathAnnotation: rel}}).Read()
		nodes = append(nodes, read...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	changed := map[string]bool{}
	var set func(file string, n *yaml.Node) error
	set = func(file string, n *yaml.Node) error {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				if err := set(file, n.Content[i]); err != nil {
					return err
				}
			}
		case yaml.SequenceNode, yaml.DocumentNode:
			for _, c := range n.Content {
				if err := set(file, c); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			fm := fieldmeta.FieldMeta{SettersSchema: schema}
			if err := fm.Read(yaml.NewRNode(n)); err != nil || fm.Schema.Ref.String() == "" {
				return err
			}
			s, err := openapi.Resolve(&fm.Schema.Ref, schema)
			if err != nil {
				return err
			}
			var ext struct{ Setter struct{ Value string } }
			raw, _ := json.Marshal(s.Extensions["x-k8s-cli"])
			if err := json.Unmarshal(raw, &ext); err != nil {
				return err
			}
			if n.Value != ext.Setter.Value {
				n.Value = ext.Setter.Value
				changed[file] = true
			}
		}
		return nil
	}
	var out []*yaml.RNode
	var files []string
	for _, n := range nodes {
		file, _, err := kioutil.GetFileAnnotations(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := set(file, n.YNode()); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		file, _, _ := kioutil.GetFileAnnotations(n)
		if changed[file] {
			out = append(out, n)
		}
	}
	for file := range changed {
		files = append(files, file)
	}
	if err := (&kio.LocalPackageWriter{PackagePath: dir}).Write(out); err != nil {
		t.Fatal(err)
	}
	return files
}
