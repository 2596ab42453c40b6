package swarmstack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// PlanStack on the in-memory Swarm: the plan it prints is what the next reconcile writes.

const planCompose = `
services:
  api:
    image: numbers-api:v1
    deploy: {replicas: 2}
    networks: [back]
    secrets: [db]
  web:
    image: numbers-web:v1
    networks: [back]
networks:
  back: {}
secrets:
  db: {environment: DB_PASSWORD}
`

const plantedPassword = "planted-db-password-0001"

func newPlanEnv(t *testing.T, password string) *stackEnv {
	t.Helper()
	e := newStackEnv(t)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "db"}, Data: map[string][]byte{"DB_PASSWORD": []byte(password)}}
	if err := e.c.Create(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	return e
}

func withSecretVars(s *swarmv1.SwarmStack) {
	s.Spec.Compose.VariablesFrom = []swarmv1.VariablesSource{{SecretRef: &swarmv1.LocalObjectReference{Name: "db"}}}
}

func (e *stackEnv) plan(name string) stack.StackPlan {
	e.t.Helper()
	p, err := stack.PlanStack(context.Background(), e.c, e.sw, e.stack(name), e.reconciler().NamingKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func serviceActions(p stack.StackPlan) []string {
	var out []string
	for _, s := range p.Services {
		out = append(out, s.Action+" "+s.Name)
	}
	slices.Sort(out)
	return out
}

// serviceIDs maps the swarm's service IDs to names (writes log updates and removals by ID).
func serviceIDs(sw *memswarm.Swarm) map[string]string {
	ids := map[string]string{}
	for _, name := range sw.Services() {
		svc, _ := sw.Service(name)
		ids[svc.ID] = name
	}
	return ids
}

// writtenServices lists the service writes the in-memory Swarm saw since the mark.
func writtenServices(sw *memswarm.Swarm, from int, ids map[string]string) []string {
	var out []string
	for _, c := range sw.Writes()[from:] {
		if name, ok := ids[c.Target]; ok {
			c.Target = name
		}
		switch c.Op {
		case memswarm.OpCreateService:
			out = append(out, "create "+c.Target)
		case memswarm.OpUpdateService:
			out = append(out, "update "+c.Target)
		case memswarm.OpRemoveService:
			out = append(out, "remove "+c.Target)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestPlanOfANewStackIsWhatTheFirstReconcileCreates(t *testing.T) {
	e := newPlanEnv(t, plantedPassword)
	e.createStack("numbers", planCompose, withSecretVars)
	p := e.plan("numbers")
	if got := serviceActions(p); strings.Join(got, ",") != "create numbers_api,create numbers_web" {
		t.Fatalf("plan %v", got)
	}
	if len(p.Networks) != 1 || p.Networks[0].Name != "numbers_back" || p.Networks[0].Action != stack.ActionCreate {
		t.Fatalf("networks %+v", p.Networks)
	}
	if len(p.Secrets) != 1 || p.Secrets[0].Action != stack.ActionCreate || !strings.HasPrefix(p.Secrets[0].Name, "numbers_db-") {
		t.Fatalf("secrets %+v", p.Secrets)
	}
	mark, ids := len(e.sw.Writes()), serviceIDs(e.sw)
	e.passes("numbers", 1)
	if got := writtenServices(e.sw, mark, ids); !slices.Equal(got, serviceActions(p)) {
		t.Fatalf("reconcile wrote %v, plan said %v", got, serviceActions(p))
	}
	if !slices.Contains(e.sw.SecretNames(), p.Secrets[0].Name) {
		t.Fatalf("plan named secret %s, swarm has %v", p.Secrets[0].Name, e.sw.SecretNames())
	}
	if p.Revision != e.stack("numbers").Status.LastAttemptedRevision {
		t.Fatalf("plan revision %s, reconcile wrote %s", p.Revision, e.stack("numbers").Status.LastAttemptedRevision)
	}
}

func TestPlanAfterConvergenceIsEmpty(t *testing.T) {
	e := newPlanEnv(t, plantedPassword)
	e.sw.AutoConverge = true
	e.createStack("numbers", planCompose, withSecretVars)
	e.passes("numbers", 4)
	if p := e.plan("numbers"); !p.Empty() {
		t.Fatalf("nothing changed, plan %+v", p)
	}
}

func TestPlanShowsFieldsRotationAndPruneExactlyAsTheReconcileWrites(t *testing.T) {
	e := newPlanEnv(t, plantedPassword)
	e.sw.AutoConverge = true
	e.createStack("numbers", planCompose, withSecretVars)
	e.passes("numbers", 4)
	oldSecret := e.sw.SecretNames()[0]
	// v2: a new api image, a new password, web gone.
	var sec corev1.Secret
	if err := e.c.Get(context.Background(), ktypes.NamespacedName{Namespace: stackNS, Name: "db"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["DB_PASSWORD"] = []byte("planted-db-password-0002")
	if err := e.c.Update(context.Background(), &sec); err != nil {
		t.Fatal(err)
	}
	v2 := strings.Replace(strings.Replace(planCompose, "numbers-api:v1", "numbers-api:v2", 1),
		"  web:\n    image: numbers-web:v1\n    networks: [back]\n", "", 1)
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = &v2 })

	p := e.plan("numbers")
	if got := serviceActions(p); strings.Join(got, ",") != "remove numbers_web,update numbers_api" {
		t.Fatalf("plan %v", got)
	}
	api := p.Services[slices.IndexFunc(p.Services, func(s stack.ServiceChange) bool { return s.Name == "numbers_api" })]
	fields := map[string]stack.FieldChange{}
	for _, f := range api.Fields {
		fields[f.Path] = f
	}
	if f := fields["TaskTemplate.ContainerSpec.Image"]; f.Old != `"numbers-api:v1"` || f.New != `"numbers-api:v2"` {
		t.Fatalf("image field %+v; all %+v", f, api.Fields)
	}
	if _, ok := fields["TaskTemplate.ContainerSpec.Secrets[0].SecretName"]; !ok {
		t.Fatalf("the secret rotation is not among the fields: %+v", api.Fields)
	}
	if _, ok := fields["Labels."+swarmv1.LabelWriteID]; ok {
		t.Fatal("the write-id label changes on every write: it is no difference")
	}
	if len(p.Secrets) != 1 || p.Secrets[0].Action != stack.ActionCreate || p.Secrets[0].Replaces != oldSecret {
		t.Fatalf("want one new secret version replacing %s, got %+v", oldSecret, p.Secrets)
	}
	raw, _ := json.Marshal(p)
	if strings.Contains(string(raw), "planted-db-password") {
		t.Fatalf("the plan quotes a Secret value: %s", raw)
	}

	mark, ids := len(e.sw.Writes()), serviceIDs(e.sw)
	e.passes("numbers", 1)
	if got := writtenServices(e.sw, mark, ids); !slices.Equal(got, serviceActions(p)) {
		t.Fatalf("reconcile wrote %v, plan said %v", got, serviceActions(p))
	}
	svc, _ := e.sw.Service("numbers_api")
	if got := svc.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName; got != p.Secrets[0].Name {
		t.Fatalf("reconcile used secret %s, plan said %s", got, p.Secrets[0].Name)
	}
}

func TestPlanSeesDriftAndHeldRevisions(t *testing.T) {
	e := newPlanEnv(t, plantedPassword)
	e.sw.AutoConverge = true
	e.createStack("numbers", planCompose, withSecretVars)
	e.passes("numbers", 4)
	// Someone scales api by hand.
	svc, _ := e.sw.Service("numbers_api")
	spec := svc.Spec
	three := uint64(3)
	spec.Mode.Replicated.Replicas = &three
	if _, err := e.sw.UpdateService(context.Background(), swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	p := e.plan("numbers")
	if len(p.Services) != 1 || !p.Services[0].Drifted || p.Services[0].Action != stack.ActionUpdate {
		t.Fatalf("want drift on api, plan %+v", p.Services)
	}
	found := false
	for _, f := range p.Services[0].Fields {
		if f.Path == "Mode.Replicated.Replicas" && f.Old == "3" && f.New == "2" {
			found = true
		}
	}
	if !found {
		t.Fatalf("replicas 3 -> 2 not in %+v", p.Services[0].Fields)
	}
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Suspend = true })
	if p := e.plan("numbers"); !strings.Contains(p.Held, "suspended") {
		t.Fatalf("a suspended stack writes nothing; plan held %q", p.Held)
	}
}

func TestPlanNamesTheBadFileAndWritesNothing(t *testing.T) {
	e := newPlanEnv(t, plantedPassword)
	e.createStack("numbers", "services: {api: {image: [not, a, string]}}\n")
	_, err := stack.PlanStack(context.Background(), e.c, e.sw, e.stack("numbers"), []byte("k"))
	if err == nil || !strings.Contains(err.Error(), "docker-compose.yml") {
		t.Fatalf("want an error naming the file, got %v", err)
	}
	if n := len(e.sw.Writes()); n != 0 {
		t.Fatalf("a plan wrote to the swarm: %v", e.sw.Writes())
	}
}

func TestStackObjectsListsWhatTheStackOwns(t *testing.T) {
	e := newPlanEnv(t, plantedPassword)
	e.sw.AutoConverge = true
	e.createStack("numbers", planCompose, withSecretVars)
	e.passes("numbers", 4)
	tree, err := stack.StackObjects(context.Background(), e.sw, e.stack("numbers"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Services) != 2 || tree.Services[0].Name != "numbers_api" || tree.Services[0].Running != 2 || tree.Services[0].Desired != 2 {
		t.Fatalf("services %+v", tree.Services)
	}
	if len(tree.Services[0].Secrets) != 1 || !strings.HasPrefix(tree.Services[0].Secrets[0], "numbers_db-") {
		t.Fatalf("api's secrets %+v", tree.Services[0].Secrets)
	}
	if len(tree.Networks) != 1 || tree.Networks[0].Name != "numbers_back" || len(tree.Secrets) != 1 || len(tree.Others) != 0 {
		t.Fatalf("tree %+v", tree)
	}
}

// secretForms are the ways a value can show in printed output: as it is, quoted by Go,
// and JSON-encoded with and without HTML escaping (`<` as \u003c, `&` as \u0026).
func secretForms(v string) []string {
	escaped, _ := json.Marshal(v)
	var plain strings.Builder
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return []string{v, strconv.Quote(v), strconv.QuoteToASCII(v), string(escaped), strings.TrimSpace(plain.String()),
		strings.Trim(string(escaped), `"`)}
}

// TestPlanHidesSecretSourcedValuesOldAndNew: an environment variable taken from a
// Kubernetes Secret changes from one value holding `<` and `&` to another. The plan says
// that it changes, and holds neither the value written before (read back from the running
// service) nor the new one, in any form.
func TestPlanHidesSecretSourcedValuesOldAndNew(t *testing.T) {
	const oldValue, newValue = "old<pass&word-0001", "new<pass&word-0002"
	e := newPlanEnv(t, oldValue)
	e.sw.AutoConverge = true
	withEnv := strings.Replace(planCompose, "    secrets: [db]\n", "    secrets: [db]\n    environment: [DB_PASSWORD]\n", 1)
	e.createStack("numbers", withEnv, withSecretVars)
	e.passes("numbers", 4)
	var sec corev1.Secret
	if err := e.c.Get(context.Background(), ktypes.NamespacedName{Namespace: stackNS, Name: "db"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["DB_PASSWORD"] = []byte(newValue)
	if err := e.c.Update(context.Background(), &sec); err != nil {
		t.Fatal(err)
	}

	p := e.plan("numbers")
	var env *stack.FieldChange
	for i := range p.Services {
		for j, f := range p.Services[i].Fields {
			if strings.Contains(f.Path, "Env") {
				env = &p.Services[i].Fields[j]
			}
		}
	}
	if env == nil || !env.Sensitive {
		t.Fatalf("the Secret-sourced variable is not shown as a sensitive change: %+v", p.Services)
	}
	asJSON, _ := json.Marshal(p)
	indented, _ := json.MarshalIndent(p, "", "  ")
	printed := strings.Join([]string{string(asJSON), string(indented), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p)}, "\n")
	for _, v := range []string{oldValue, newValue} {
		for _, form := range append(secretForms(v), "pass", "word-000") {
			if strings.Contains(printed, form) {
				t.Fatalf("the plan holds %q (a form of a Secret value):\n%s", form, printed)
			}
		}
	}
}
