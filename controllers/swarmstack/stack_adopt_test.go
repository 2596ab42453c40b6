package swarmstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// adoptCompose is a stack as a team would run it with docker stack deploy: ports,
// mounts, env, a healthcheck, a config and (on one service) a secret.
const adoptCompose = `
services:
  api:
    image: numbers-api
    environment: {B: "2", A: "1"}
    ports: ["18443:443", "18080:80"]
    volumes: ["/etc/ssl/:/etc/configs/:ro", "data:/data"]
    configs: [config1]
    healthcheck: {test: ["CMD", "/app", "health"], interval: 5s}
    networks: [back]
  db:
    image: numbers-db:v1
    secrets: [pw]
    networks: [back]
networks:
  back: {}
volumes:
  data: {}
configs:
  config1: {file: ./app.conf}
secrets:
  pw: {file: ./pw.txt}
`

// cliDeploy puts the stack on the in-memory swarm as docker stack deploy leaves it:
// no operator labels, objects named <stack>_<key>, lists in its own order, images and
// paths spelled as written.
func cliDeploy(t *testing.T, sw *memswarm.Swarm, stackName string) {
	t.Helper()
	ctx := context.Background()
	st, err := compose.Render([]compose.File{{Name: "docker-compose.yml", Content: []byte(adoptCompose)}}, compose.Options{
		StackName: stackName, ConfigData: map[string][]byte{"config1": []byte("k=v\n")}, SecretData: map[string][]byte{"pw": []byte("hunter22")},
	})
	if err != nil {
		t.Fatal(err)
	}
	stackLabel := map[string]string{memswarm.StackLabel: stackName}
	for _, n := range st.Networks {
		if err := sw.CreateNetwork(ctx, n.Name, network.CreateOptions{Driver: "overlay", Labels: stackLabel}); err != nil {
			t.Fatal(err)
		}
	}
	cid, err := sw.CreateConfig(ctx, swarmtypes.ConfigSpec{Annotations: swarmtypes.Annotations{Name: stackName + "_config1", Labels: stackLabel}, Data: []byte("k=v\n")})
	if err != nil {
		t.Fatal(err)
	}
	sid, err := sw.CreateSecret(ctx, swarmtypes.SecretSpec{Annotations: swarmtypes.Annotations{Name: stackName + "_pw", Labels: stackLabel}, Data: []byte("hunter22")})
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range st.Services {
		spec := stack.CloneSpec(svc.Spec)
		cs := spec.TaskTemplate.ContainerSpec
		slices.Reverse(cs.Env)
		slices.Reverse(cs.Mounts)
		for i := range cs.Mounts {
			if cs.Mounts[i].Type == mount.TypeBind {
				cs.Mounts[i].Source, cs.Mounts[i].Target = "/etc/ssl/", "/etc/configs/"
			}
		}
		if spec.EndpointSpec != nil {
			slices.Reverse(spec.EndpointSpec.Ports)
		}
		for _, r := range cs.Configs {
			r.ConfigName, r.ConfigID, r.File.Name = stackName+"_config1", cid, "config1"
		}
		for _, r := range cs.Secrets {
			r.SecretName, r.SecretID, r.File.Name = stackName+"_pw", sid, "pw"
		}
		if cs.Image == "numbers-api" {
			cs.Image = "numbers-api:latest"
		}
		if _, err := sw.CreateService(ctx, swarm.ServiceWrite{Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
	sw.ConvergeAll()
}

func adoptingStack(e *stackEnv, name string) {
	e.t.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "cfg"}, Data: map[string]string{"app.conf": "k=v\n"}}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "pw"}, Data: map[string][]byte{"pw": []byte("hunter22")}}
	if err := e.c.Create(ctx, cm); err != nil {
		e.t.Fatal(err)
	}
	if err := e.c.Create(ctx, sec); err != nil {
		e.t.Fatal(err)
	}
	e.createStack(name, adoptCompose, func(s *swarmv1.SwarmStack) {
		s.Spec.Adopt = true
		s.Spec.Configs = []swarmv1.StackConfig{{Name: "config1", ConfigMapRef: swarmv1.KeySelector{Name: "cfg", Key: "app.conf"}}}
		s.Spec.Secrets = []swarmv1.StackSecret{{Name: "pw", SecretRef: swarmv1.KeySelector{Name: "pw", Key: "pw"}}}
	})
}

// TestAdoptCLIStackRestartsOnlyServicesWithSecrets: adopting what docker stack deploy
// made rewrites the service without secrets with the same task template and endpoint
// (Swarm starts no update), reuses the CLI's config, rolls the service with a secret
// once, records the CLI's revision as Adopted, and a second pass writes nothing.
func TestAdoptCLIStackRestartsOnlyServicesWithSecrets(t *testing.T) {
	e := newStackEnv(t)
	cliDeploy(t, e.sw, "shop")
	before := map[string]swarmtypes.Service{}
	for _, name := range []string{"shop_api", "shop_db"} {
		before[name], _ = e.sw.Service(name)
	}
	adoptingStack(e, "shop")
	e.passes("shop", 1)

	api, _ := e.sw.Service("shop_api")
	if api.Spec.Labels[swarmv1.LabelOwner] != stack.OwnerOf(e.stack("shop")) {
		t.Fatalf("shop_api not adopted: labels %v", api.Spec.Labels)
	}
	if a, b := testkit.JSON(t, api.Spec.TaskTemplate), testkit.JSON(t, before["shop_api"].Spec.TaskTemplate); a != b {
		t.Errorf("shop_api task template changed on adoption (tasks would be replaced):\n%s\n%s", b, a)
	}
	if a, b := testkit.JSON(t, api.Spec.EndpointSpec), testkit.JSON(t, before["shop_api"].Spec.EndpointSpec); a != b {
		t.Errorf("shop_api endpoint changed on adoption:\n%s\n%s", b, a)
	}
	if api.UpdateStatus != nil {
		t.Errorf("Swarm started an update of shop_api: %+v", api.UpdateStatus)
	}
	if api.Spec.Labels[swarmv1.LabelSpecHash] == "" {
		t.Error("no spec-hash label")
	}
	db, _ := e.sw.Service("shop_db")
	if db.UpdateStatus == nil || db.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName == "shop_pw" {
		t.Errorf("shop_db should roll once onto the operator's secret: %+v %+v", db.UpdateStatus, db.Spec.TaskTemplate.ContainerSpec.Secrets[0])
	}

	var adoptedEvent string
	for _, ev := range e.events() {
		if strings.Contains(ev, " "+swarmv1.EventAdopted+" ") {
			adoptedEvent = ev
		}
	}
	if !strings.Contains(adoptedEvent, "shop_db will roll once") || strings.Contains(adoptedEvent, "shop_api will") || strings.Contains(adoptedEvent, "hunter22") {
		t.Errorf("adoption event: %q", adoptedEvent)
	}
	h := e.stack("shop").Status.History
	if len(h) != 2 || h[1].Outcome != swarmv1.OutcomeAdopted || !strings.HasPrefix(h[1].Revision, "sha256:") || h[0].Outcome != swarmv1.OutcomeProgressing {
		t.Fatalf("history %+v", h)
	}

	e.sw.ConvergeAll()
	e.passes("shop", 2)
	if r := e.ready("shop"); r.Status != metav1.ConditionTrue {
		t.Fatalf("Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
	h = e.stack("shop").Status.History
	if len(h) != 2 || h[0].Outcome != swarmv1.OutcomeCompleted || h[1].Outcome != swarmv1.OutcomeAdopted {
		t.Fatalf("history after the rollout %+v", h)
	}
	writes := e.writes()
	e.passes("shop", 2)
	if e.writes() != writes {
		t.Fatalf("a second pass wrote: %v", e.sw.Writes()[writes:])
	}
}

// TestAdoptedStackStillCorrectsDrift: the aligned write leaves drift detection working:
// a hand edit after the adoption is undone.
func TestAdoptedStackStillCorrectsDrift(t *testing.T) {
	e := newStackEnv(t)
	cliDeploy(t, e.sw, "shop")
	adoptingStack(e, "shop")
	e.passes("shop", 1)
	e.sw.ConvergeAll()
	e.passes("shop", 2)
	e.events()

	api, _ := e.sw.Service("shop_api")
	spec := stack.CloneSpec(api.Spec)
	spec.TaskTemplate.ContainerSpec.Env = append(spec.TaskTemplate.ContainerSpec.Env, "HAND=1")
	if _, err := e.sw.UpdateService(context.Background(), swarm.ServiceWrite{ID: api.ID, Version: api.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	e.sw.ConvergeAll()
	e.passes("shop", 1)
	if !testenv.HasEvent(e.events(), swarmv1.EventDriftCorrected) {
		t.Fatal("no DriftCorrected event")
	}
	api, _ = e.sw.Service("shop_api")
	if slices.Contains(api.Spec.TaskTemplate.ContainerSpec.Env, "HAND=1") {
		t.Fatalf("hand edit kept: %v", api.Spec.TaskTemplate.ContainerSpec.Env)
	}
}

// TestAdoptionReusesConfigOnlyWithSameData: a CLI config whose data differs from the
// stack's is not reused; the service rolls onto the operator's config.
func TestAdoptionReusesConfigOnlyWithSameData(t *testing.T) {
	e := newStackEnv(t)
	cliDeploy(t, e.sw, "shop")
	adoptingStack(e, "shop")
	e.edit("shop", func(s *swarmv1.SwarmStack) {})
	cm := &corev1.ConfigMap{}
	if err := e.c.Get(context.Background(), ktypes.NamespacedName{Namespace: stackNS, Name: "cfg"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["app.conf"] = "k=changed\n"
	if err := e.c.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	e.passes("shop", 1)
	api, _ := e.sw.Service("shop_api")
	if ref := api.Spec.TaskTemplate.ContainerSpec.Configs[0]; ref.ConfigName == "shop_config1" || api.UpdateStatus == nil {
		t.Fatalf("config with other data reused: %+v, update %+v", ref, api.UpdateStatus)
	}
}

// TestAdoptionRecordedOnceWhenAWriteFails: a refused write (of the first service, or of
// the second after the first was adopted) leaves the adoption to the next pass, which
// records no second Adopted entry and restarts no task either.
func TestAdoptionRecordedOnceWhenAWriteFails(t *testing.T) {
	for _, nth := range []int{1, 2} {
		t.Run(fmt.Sprintf("write %d refused", nth), func(t *testing.T) { adoptWithRefusedWrite(t, nth) })
	}
}

func adoptWithRefusedWrite(t *testing.T, nth int) {
	e := newStackEnv(t)
	cliDeploy(t, e.sw, "shop")
	before, _ := e.sw.Service("shop_api")
	adoptingStack(e, "shop")
	e.sw.Fail(memswarm.OpUpdateService, nth, errors.New("injected: manager refused the write"))
	e.passes("shop", 3)
	e.sw.ConvergeAll()
	e.passes("shop", 2)
	adopted := 0
	for _, h := range e.stack("shop").Status.History {
		if h.Outcome == swarmv1.OutcomeAdopted {
			adopted++
		}
	}
	if adopted != 1 {
		t.Fatalf("%d Adopted entries: %+v", adopted, e.stack("shop").Status.History)
	}
	api, _ := e.sw.Service("shop_api")
	if api.Spec.Labels[swarmv1.LabelOwner] == "" || testkit.JSON(t, api.Spec.TaskTemplate) != testkit.JSON(t, before.Spec.TaskTemplate) {
		t.Fatalf("shop_api after the retried adoption: labels %v, task template changed: %v", api.Spec.Labels,
			testkit.JSON(t, api.Spec.TaskTemplate) != testkit.JSON(t, before.Spec.TaskTemplate))
	}
	if r := e.ready("shop"); r.Status != metav1.ConditionTrue {
		t.Fatalf("Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}

// TestPlanOfAnAdoptedStackIsTheAlignedWrite: docker stack deploy left lists in its own
// order (env, mounts, ports) and its own spellings. The plan of the adoption shows what
// the aligned write changes and nothing else: no field of shop_api's tasks or endpoint
// (only the operator's labels), the secret rotation of shop_db; and each service's
// plan touches its tasks exactly when the write replaced them.
func TestPlanOfAnAdoptedStackIsTheAlignedWrite(t *testing.T) {
	e := newStackEnv(t)
	cliDeploy(t, e.sw, "shop")
	adoptingStack(e, "shop")
	before := map[string]swarmtypes.Service{}
	for _, name := range []string{"shop_api", "shop_db"} {
		before[name], _ = e.sw.Service(name)
	}
	p := e.plan("shop")
	planned := map[string][]string{}
	for _, s := range p.Services {
		for _, f := range s.Fields {
			if !strings.HasPrefix(f.Path, "Labels.") {
				planned[s.Name] = append(planned[s.Name], f.Path)
			}
		}
	}
	if len(planned["shop_api"]) != 0 {
		t.Errorf("the plan shows changes the aligned write does not make to shop_api: %v", planned["shop_api"])
	}
	if !slices.Contains(planned["shop_db"], "TaskTemplate.ContainerSpec.Secrets[0].SecretName") {
		t.Errorf("the plan misses shop_db's secret rotation: %v", planned["shop_db"])
	}
	e.passes("shop", 1)
	for name, was := range before {
		now, _ := e.sw.Service(name)
		rewritten := testkit.JSON(t, now.Spec.TaskTemplate) != testkit.JSON(t, was.Spec.TaskTemplate) ||
			testkit.JSON(t, now.Spec.EndpointSpec) != testkit.JSON(t, was.Spec.EndpointSpec)
		if rewritten != (len(planned[name]) > 0) {
			t.Errorf("%s: the write changed its tasks or endpoint: %v; the plan showed %v", name, rewritten, planned[name])
		}
	}
}

// TestAdoptionNamesOnlyServicesTheComposeFilesName: beside the stack docker stack deploy
// made, a service created by hand with the stack's label and named in no compose file.
// The adoption names only the services it took over, once; the hand-made service is
// never reported as adopted, neither then nor at the next revisions.
func TestAdoptionNamesOnlyServicesTheComposeFilesName(t *testing.T) {
	e := newStackEnv(t)
	cliDeploy(t, e.sw, "shop")
	api, _ := e.sw.Service("shop_api")
	tool := stack.CloneSpec(api.Spec)
	tool.Name = "shop_tool"
	if _, err := e.sw.CreateService(context.Background(), swarm.ServiceWrite{Spec: tool}); err != nil {
		t.Fatal(err)
	}
	adoptingStack(e, "shop")
	e.passes("shop", 1)
	e.sw.ConvergeAll()
	e.passes("shop", 2)
	for _, image := range []string{"numbers-db:v2", "numbers-db:v3"} {
		next := strings.Replace(adoptCompose, "numbers-db:v1", image, 1)
		e.edit("shop", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = &next })
		e.passes("shop", 1)
		e.sw.ConvergeAll()
		e.passes("shop", 2)
	}
	if e.image("shop_db") != "numbers-db:v3" {
		t.Fatalf("the releases did not reach the swarm: shop_db runs %s", e.image("shop_db"))
	}
	var adopted []string
	for _, h := range e.stack("shop").Status.History {
		if h.Outcome == swarmv1.OutcomeAdopted {
			adopted = append(adopted, h.Message)
		}
	}
	if len(adopted) != 1 || strings.Contains(adopted[0], "shop_tool") || !strings.Contains(adopted[0], "shop_api") {
		t.Fatalf("want one Adopted entry naming shop_api and not shop_tool, got %q", adopted)
	}
	for _, ev := range e.events() {
		if strings.Contains(ev, " "+swarmv1.EventAdopted+" ") && strings.Contains(ev, "shop_tool") {
			t.Fatalf("an event reports shop_tool as adopted: %s", ev)
		}
	}
	if svc, _ := e.sw.Service("shop_tool"); svc.Spec.Labels[swarmv1.LabelOwner] != "" {
		t.Fatalf("shop_tool was taken over: labels %v", svc.Spec.Labels)
	}
}
