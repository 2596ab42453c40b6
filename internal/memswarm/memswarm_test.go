package memswarm

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	swarmtypes "github.com/docker/docker/api/types/swarm"

	"github.com/swarmops/swarm-operator/internal/swarm"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// newSwarm is a fake with a fixed clock, one manager and two workers.
func newSwarm() *Swarm {
	m := New()
	m.Now = func() time.Time { return t0 }
	m.AddNode("m1", swarmtypes.NodeRoleManager)
	m.AddNode("w1", swarmtypes.NodeRoleWorker)
	m.AddNode("w2", swarmtypes.NodeRoleWorker)
	return m
}

func spec(name, image string, replicas uint64, labels map[string]string) swarmtypes.ServiceSpec {
	return swarmtypes.ServiceSpec{
		Annotations:  swarmtypes.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: image}},
		Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &replicas}},
	}
}

func create(t *testing.T, m *Swarm, s swarmtypes.ServiceSpec) swarmtypes.Service {
	t.Helper()
	if _, err := m.CreateService(context.Background(), swarm.ServiceWrite{Spec: s}); err != nil {
		t.Fatal(err)
	}
	svc, _ := m.Service(s.Name)
	return svc
}

func update(m *Swarm, svc swarmtypes.Service, image string) error {
	s := clone(svc.Spec) // the spec holds pointers: never write through the caller's
	s.TaskTemplate.ContainerSpec.Image = image
	_, err := m.UpdateService(context.Background(), swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: s})
	return err
}

func TestCreateService(t *testing.T) {
	m := newSwarm()
	ctx := context.Background()
	res, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: spec("api", "numbers-api:v1", 2, nil)})
	if err != nil || res.ID == "" {
		t.Fatal(res, err)
	}
	svc, ok := m.Service("api")
	if !ok || svc.ID != res.ID || svc.Version.Index == 0 || !svc.CreatedAt.Equal(t0) || !svc.UpdatedAt.Equal(t0) ||
		svc.UpdateStatus != nil || svc.PreviousSpec != nil || svc.Spec.TaskTemplate.ContainerSpec.Image != "numbers-api:v1" {
		t.Fatalf("created: %+v", svc)
	}
	_, err = m.CreateService(ctx, swarm.ServiceWrite{Spec: spec("api", "numbers-api:v2", 1, nil)})
	if !cerrdefs.IsConflict(err) {
		t.Fatalf("second create: %v, want a conflict", err)
	}
	if _, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: spec("", "x", 1, nil)}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("nameless create: %v", err)
	}
}

func TestUpdateService(t *testing.T) {
	m := newSwarm()
	svc := create(t, m, spec("api", "numbers-api:v1", 2, nil))
	later := t0.Add(time.Minute)
	m.Now = func() time.Time { return later }
	if err := update(m, svc, "numbers-api:v2"); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Service("api")
	switch {
	case got.Version.Index <= svc.Version.Index:
		t.Errorf("version %d after %d", got.Version.Index, svc.Version.Index)
	case got.PreviousSpec == nil || !reflect.DeepEqual(*got.PreviousSpec, svc.Spec):
		t.Errorf("previous spec %+v, want %+v", got.PreviousSpec, svc.Spec)
	case got.Spec.TaskTemplate.ContainerSpec.Image != "numbers-api:v2" || !got.UpdatedAt.Equal(later):
		t.Errorf("spec/updatedAt: %+v", got)
	case got.UpdateStatus == nil || got.UpdateStatus.State != swarmtypes.UpdateStateUpdating ||
		got.UpdateStatus.Message != "update in progress" || !got.UpdateStatus.StartedAt.Equal(later) || got.UpdateStatus.CompletedAt != nil:
		t.Errorf("update status %+v", got.UpdateStatus)
	}
	// The version read before the update is stale now.
	if err := update(m, svc, "numbers-api:v3"); !errors.Is(err, swarm.ErrVersionConflict) {
		t.Fatalf("stale update: %v", err)
	}
	// Unknown service.
	_, err := m.UpdateService(context.Background(), swarm.ServiceWrite{ID: "nope", Spec: svc.Spec})
	if !cerrdefs.IsNotFound(err) {
		t.Fatalf("update of an unknown service: %v", err)
	}
}

func TestScaleOnlyUpdateStartsNoRollout(t *testing.T) {
	m := newSwarm()
	svc := create(t, m, spec("api", "numbers-api:v1", 2, nil))
	s := svc.Spec
	three := uint64(3)
	s.Mode.Replicated.Replicas = &three
	if _, err := m.UpdateService(context.Background(), swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: s}); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Service("api")
	if got.UpdateStatus != nil || got.PreviousSpec == nil {
		t.Fatalf("after a scale: status %+v, previous %v", got.UpdateStatus, got.PreviousSpec)
	}
}

func TestRollout(t *testing.T) {
	m := newSwarm()
	svc := create(t, m, spec("numbers_api", "numbers-api:v1", 2, map[string]string{StackLabel: "numbers"}))
	if err := update(m, svc, "numbers-api:v2"); err != nil {
		t.Fatal(err)
	}
	list := func() swarmtypes.Service {
		l, err := m.StackServices(context.Background(), "numbers")
		if err != nil || len(l) != 1 {
			t.Fatal(l, err)
		}
		return l[0]
	}
	if st := list().ServiceStatus; st.DesiredTasks != 2 || st.RunningTasks != 0 {
		t.Fatalf("status %+v", st)
	}
	m.SetRunning("numbers_api", 1)
	before := list()
	m.SetUpdateState("numbers_api", swarmtypes.UpdateStatePaused, "update paused due to failure")
	got := list()
	if got.ServiceStatus.RunningTasks != 1 || got.UpdateStatus.State != swarmtypes.UpdateStatePaused ||
		got.Version.Index <= before.Version.Index || !got.UpdateStatus.StartedAt.Equal(*before.UpdateStatus.StartedAt) {
		t.Fatalf("paused: %+v %+v", got.ServiceStatus, got.UpdateStatus)
	}
	m.Converge("numbers_api") // a paused update stays paused
	if got := list(); got.UpdateStatus.State != swarmtypes.UpdateStatePaused || got.ServiceStatus.RunningTasks != 2 {
		t.Fatalf("converged paused: %+v", got.UpdateStatus)
	}
	m.SetUpdateState("numbers_api", swarmtypes.UpdateStateUpdating, "update in progress")
	m.ConvergeAll()
	if got := list(); got.UpdateStatus.State != swarmtypes.UpdateStateCompleted || got.UpdateStatus.CompletedAt == nil {
		t.Fatalf("converged: %+v", got.UpdateStatus)
	}
}

func TestAutoConverge(t *testing.T) {
	m := newSwarm()
	m.AutoConverge = true
	svc := create(t, m, spec("api", "numbers-api:v1", 2, nil))
	if err := update(m, svc, "numbers-api:v2"); err != nil {
		t.Fatal(err)
	}
	l, _ := m.AllServices(context.Background())
	if l[0].UpdateStatus.State != swarmtypes.UpdateStateCompleted || l[0].ServiceStatus.RunningTasks != 2 {
		t.Fatalf("%+v %+v", l[0].UpdateStatus, l[0].ServiceStatus)
	}
}

func TestRollback(t *testing.T) {
	m := newSwarm()
	ctx := context.Background()
	svc := create(t, m, spec("api", "numbers-api:v1", 2, nil))
	if err := m.RollbackService(ctx, svc.ID, svc.Version); !errors.Is(err, swarm.ErrNoPreviousSpec) {
		t.Fatalf("rollback without a previous spec: %v", err)
	}
	if err := update(m, svc, "numbers-api:v2"); err != nil {
		t.Fatal(err)
	}
	if err := m.RollbackService(ctx, svc.ID, svc.Version); !errors.Is(err, swarm.ErrVersionConflict) {
		t.Fatalf("rollback at a stale version: %v", err)
	}
	updated, _ := m.Service("api")
	if err := m.RollbackService(ctx, svc.ID, updated.Version); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Service("api")
	if !reflect.DeepEqual(got.Spec, *updated.PreviousSpec) || !reflect.DeepEqual(*got.PreviousSpec, updated.Spec) ||
		got.Version.Index <= updated.Version.Index {
		t.Fatalf("rolled back: %+v", got)
	}
	if st := got.UpdateStatus; st.State != swarmtypes.UpdateStateRollbackStarted || st.Message != "manually requested rollback" {
		t.Fatalf("status %+v", st)
	}
	m.Converge("api")
	if got, _ := m.Service("api"); got.UpdateStatus.State != swarmtypes.UpdateStateRollbackCompleted {
		t.Fatalf("status %+v", got.UpdateStatus)
	}
}

func TestNodes(t *testing.T) {
	m := New()
	m.AddNode("m2", swarmtypes.NodeRoleManager, WithReachability(swarmtypes.ReachabilityReachable))
	m.AddNode("m1", swarmtypes.NodeRoleManager, Leader())
	m.AddNode("w1", swarmtypes.NodeRoleWorker, WithLabels(map[string]string{"zone": "a"}), WithEngineLabels(map[string]string{"disk": "ssd"}),
		WithAvailability(swarmtypes.NodeAvailabilityPause), WithState(swarmtypes.NodeStateDown))
	ctx := context.Background()
	nodes, err := m.Nodes(ctx)
	if err != nil || len(nodes) != 3 || nodes[0].Description.Hostname != "m1" || nodes[2].ID != "node-w1" {
		t.Fatal(nodes, err)
	}
	if !nodes[0].ManagerStatus.Leader || nodes[1].ManagerStatus.Leader || nodes[2].ManagerStatus != nil {
		t.Fatalf("leader: %+v %+v", nodes[0].ManagerStatus, nodes[1].ManagerStatus)
	}
	w1 := nodes[2]
	if w1.Spec.Labels["zone"] != "a" || w1.Description.Engine.Labels["disk"] != "ssd" ||
		w1.Spec.Availability != swarmtypes.NodeAvailabilityPause || w1.Status.State != swarmtypes.NodeStateDown {
		t.Fatalf("w1: %+v", w1)
	}
	h, err := m.Health(ctx)
	if err != nil || h.SwarmID != "memswarm" || len(h.Nodes) != 3 || h.Endpoint != "mem://m2" || h.APIVersion == "" {
		t.Fatalf("health %+v %v", h, err)
	}
}

func TestSwapNodeAvailability(t *testing.T) {
	m := newSwarm()
	ctx := context.Background()
	active, drain := swarmtypes.NodeAvailabilityActive, swarmtypes.NodeAvailabilityDrain
	before, _ := m.Node("w1")
	if err := m.SwapNodeAvailability(ctx, "node-w1", active, drain); err != nil {
		t.Fatal(err)
	}
	after, _ := m.Node("w1")
	if after.Spec.Availability != drain || after.Version.Index <= before.Version.Index {
		t.Fatalf("%+v", after)
	}
	if err := m.SwapNodeAvailability(ctx, "node-w1", active, drain); err != nil {
		t.Fatalf("already drained: %v", err)
	}
	m.SetAvailability("w1", swarmtypes.NodeAvailabilityPause) // someone else
	if err := m.SwapNodeAvailability(ctx, "node-w1", drain, active); !errors.Is(err, swarm.ErrAvailabilityChanged) {
		t.Fatalf("changed meanwhile: %v", err)
	}
	if err := m.SwapNodeAvailability(ctx, "node-zz", drain, active); !cerrdefs.IsNotFound(err) {
		t.Fatalf("unknown node: %v", err)
	}
	if n := len(m.Writes()); n != 4 {
		t.Fatalf("%d writes logged: %+v", n, m.Writes())
	}
}

func TestTasksAndDrain(t *testing.T) {
	m := newSwarm()
	ctx := context.Background()
	svc := create(t, m, spec("api", "numbers-api:v1", 2, nil))
	a := m.AddTask("api", "w1", swarmtypes.TaskStateRunning)
	b := m.AddTask("api", "w2", swarmtypes.TaskStateRunning)
	if a.Slot != 1 || b.Slot != 2 || a.NodeID != "node-w1" || a.ServiceID != svc.ID || a.DesiredState != swarmtypes.TaskStateRunning ||
		!a.Status.Timestamp.Equal(t0) || a.Spec.ContainerSpec.Image != "numbers-api:v1" {
		t.Fatalf("tasks %+v %+v", a, b)
	}
	m.SetTaskState(b.ID, swarmtypes.TaskStateFailed, "task: non-zero exit (1)")
	tasks, err := m.TasksOfServices(ctx, []string{svc.ID})
	if err != nil || len(tasks) != 2 || tasks[1].Status.State != swarmtypes.TaskStateFailed || tasks[1].Status.Err == "" {
		t.Fatal(tasks, err)
	}
	if _, err := m.TasksOfServices(ctx, []string{"nope"}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("tasks of an unknown service: %v", err)
	}
	if err := m.SwapNodeAvailability(ctx, "node-w1", swarmtypes.NodeAvailabilityActive, swarmtypes.NodeAvailabilityDrain); err != nil {
		t.Fatal(err)
	}
	on, _ := m.TasksOnNodes(ctx, []string{"node-w1"})
	if len(on) != 1 || on[0].DesiredState != swarmtypes.TaskStateRunning {
		t.Fatalf("before the evacuation: %+v", on)
	}
	m.EvacuateDrained()
	on, _ = m.TasksOnNodes(ctx, []string{"node-w1"})
	if len(on) != 1 || on[0].DesiredState != swarmtypes.TaskStateShutdown || on[0].Status.State != swarmtypes.TaskStateShutdown {
		t.Fatalf("after the evacuation: %+v", on)
	}
	if l, err := m.TasksOnNodes(ctx, nil); l != nil || err != nil || len(m.Calls()) != 7 {
		t.Fatalf("no nodes: %v %v, calls %+v", l, err, m.Calls())
	}
	if err := m.RemoveService(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if on, _ := m.TasksOnNodes(ctx, []string{"node-w1", "node-w2"}); len(on) != 0 {
		t.Fatalf("tasks of a removed service: %+v", on)
	}
	if err := m.RemoveService(ctx, svc.ID); err != nil {
		t.Fatalf("removing again: %v", err)
	}
}

func TestGlobalDesired(t *testing.T) {
	m := newSwarm()
	s := spec("agent", "numbers-api:v1", 0, nil)
	s.Mode = swarmtypes.ServiceMode{Global: &swarmtypes.GlobalService{}}
	create(t, m, s)
	m.SetAvailability("w2", swarmtypes.NodeAvailabilityDrain)
	l, _ := m.AllServices(context.Background())
	if l[0].ServiceStatus.DesiredTasks != 2 {
		t.Fatalf("%+v", l[0].ServiceStatus)
	}
}

func TestObjects(t *testing.T) {
	m := newSwarm()
	ctx := context.Background()
	owner := map[string]string{swarm.LabelOwner: "ns.stack", StackLabel: "numbers"}
	if err := m.CreateNetwork(ctx, "numbers_default", network.CreateOptions{Driver: "overlay", Labels: owner}); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateNetwork(ctx, "numbers_default", network.CreateOptions{Driver: "overlay"}); !cerrdefs.IsConflict(err) {
		t.Fatalf("duplicate network: %v", err)
	}
	sid, err := m.CreateSecret(ctx, swarmtypes.SecretSpec{Annotations: swarmtypes.Annotations{Name: "pw", Labels: owner}, Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateSecret(ctx, swarmtypes.SecretSpec{Annotations: swarmtypes.Annotations{Name: "pw"}}); !cerrdefs.IsConflict(err) {
		t.Fatalf("duplicate secret: %v", err)
	}
	cid, err := m.CreateConfig(ctx, swarmtypes.ConfigSpec{Annotations: swarmtypes.Annotations{Name: "conf"}, Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateConfig(ctx, swarmtypes.ConfigSpec{Annotations: swarmtypes.Annotations{Name: "conf"}}); !cerrdefs.IsConflict(err) {
		t.Fatalf("duplicate config: %v", err)
	}
	if l, _ := m.Secrets(ctx, "ns.stack"); len(l) != 1 || l[0].ID != sid {
		t.Fatalf("owned secrets %+v", l)
	}
	if l, _ := m.Configs(ctx, "ns.stack"); len(l) != 0 {
		t.Fatalf("owned configs %+v", l)
	}
	if l, _ := m.Configs(ctx, ""); len(l) != 1 || l[0].ID != cid {
		t.Fatalf("all configs %+v", l)
	}
	nets, _ := m.StackNetworks(ctx, "numbers")
	if len(nets) != 1 || nets[0].Driver != "overlay" || nets[0].Labels[swarm.LabelOwner] != "ns.stack" {
		t.Fatalf("stack networks %+v", nets)
	}
	if ok, _ := m.NetworkExists(ctx, "numbers_default"); !ok {
		t.Fatal("network does not exist")
	}

	s := spec("api", "numbers-api:v1", 1, nil)
	s.TaskTemplate.Networks = []swarmtypes.NetworkAttachmentConfig{{Target: "numbers_default"}}
	s.TaskTemplate.ContainerSpec.Secrets = []*swarmtypes.SecretReference{{SecretID: sid, SecretName: "pw", File: &swarmtypes.SecretReferenceFileTarget{Name: "pw"}}}
	s.TaskTemplate.ContainerSpec.Configs = []*swarmtypes.ConfigReference{{ConfigID: cid, ConfigName: "conf", File: &swarmtypes.ConfigReferenceFileTarget{Name: "/conf"}}}
	svc := create(t, m, s)
	if svc.Spec.TaskTemplate.Networks[0].Target != nets[0].ID {
		t.Fatalf("network not resolved to its ID: %+v", svc.Spec.TaskTemplate.Networks)
	}
	for what, err := range map[string]error{
		"network": m.RemoveNetwork(ctx, nets[0].ID),
		"secret":  m.RemoveSecret(ctx, sid),
		"config":  m.RemoveConfig(ctx, cid),
	} {
		if err == nil {
			t.Errorf("removing the %s in use worked", what)
		}
	}
	if err := m.RemoveService(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"network":         m.RemoveNetwork(ctx, nets[0].ID),
		"secret":          m.RemoveSecret(ctx, sid),
		"config":          m.RemoveConfig(ctx, cid),
		"unknown network": m.RemoveNetwork(ctx, "nope"),
		"unknown secret":  m.RemoveSecret(ctx, "nope"),
		"unknown config":  m.RemoveConfig(ctx, "nope"),
	} {
		if err != nil {
			t.Errorf("removing the %s: %v", what, err)
		}
	}
	if len(m.Networks())+len(m.SecretNames())+len(m.ConfigNames())+len(m.Services()) != 0 {
		t.Fatal("objects left")
	}
	missing := spec("api", "numbers-api:v1", 1, nil)
	missing.TaskTemplate.Networks = []swarmtypes.NetworkAttachmentConfig{{Target: "gone"}}
	if _, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: missing}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("service on a missing network: %v", err)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")

	t.Run("fail", func(t *testing.T) {
		m := newSwarm()
		m.Fail(OpCreateService, 2, boom)
		if _, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: spec("a", "x", 1, nil)}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: spec("b", "x", 1, nil)}); !errors.Is(err, boom) {
			t.Fatalf("second create: %v", err)
		}
		if _, ok := m.Service("b"); ok {
			t.Fatal("a failed create was applied")
		}
		if _, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: spec("b", "x", 1, nil)}); err != nil {
			t.Fatalf("third create: %v", err)
		}
		m.FailAlways(OpNodes, boom)
		for range 3 {
			if _, err := m.Nodes(ctx); !errors.Is(err, boom) {
				t.Fatal(err)
			}
		}
		m.Heal()
		if _, err := m.Nodes(ctx); err != nil {
			t.Fatal(err)
		}
		w := m.Writes()
		if len(w) != 3 || w[1].Op != OpCreateService || w[1].Target != "b" || !errors.Is(w[1].Err, boom) {
			t.Fatalf("writes %+v", w)
		}
	})

	t.Run("lose answer", func(t *testing.T) {
		m := newSwarm()
		svc := create(t, m, spec("a", "x:1", 1, nil))
		m.LoseAnswer(OpUpdateService, 1)
		if err := update(m, svc, "x:2"); !errors.Is(err, swarm.ErrUnreachable) {
			t.Fatalf("update: %v", err)
		}
		if got, _ := m.Service("a"); got.Spec.TaskTemplate.ContainerSpec.Image != "x:2" {
			t.Fatal("the update whose answer was lost was not applied")
		}
	})

	t.Run("hang", func(t *testing.T) {
		m := newSwarm()
		m.Hang(OpAllServices, 1)
		hctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err := m.AllServices(hctx)
		if !errors.Is(err, swarm.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hang: %v", err)
		}
		if _, err := m.AllServices(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("retry elsewhere", func(t *testing.T) {
		m := newSwarm()
		m.AddNode("m2", swarmtypes.NodeRoleManager)
		m.AddNode("m3", swarmtypes.NodeRoleManager)
		m.RetryElsewhere(OpCreateService, 1)
		if _, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: spec("a", "x:1", 1, nil)}); !cerrdefs.IsConflict(err) {
			t.Fatalf("create retried: %v", err)
		}
		if m.Endpoint() != "mem://m2" {
			t.Fatalf("endpoint after fail-over: %s", m.Endpoint())
		}
		svc, _ := m.Service("a")
		m.RetryElsewhere(OpUpdateService, 1)
		if err := update(m, svc, "x:2"); !errors.Is(err, swarm.ErrVersionConflict) {
			t.Fatalf("update retried: %v", err)
		}
		svc, _ = m.Service("a")
		m.RetryElsewhere(OpRollbackService, 1)
		if err := m.RollbackService(ctx, svc.ID, svc.Version); err != nil {
			t.Fatalf("rollback retried: %v", err)
		}
		if got, _ := m.Service("a"); got.Spec.TaskTemplate.ContainerSpec.Image != "x:1" {
			t.Fatalf("rolled back twice? %s", got.Spec.TaskTemplate.ContainerSpec.Image)
		}
		if c := m.Calls(); c[len(c)-1].Err != nil {
			t.Fatalf("log %+v", c[len(c)-1])
		}
		m.RetryElsewhere(OpSwapNodeAvailability, 1)
		if err := m.SwapNodeAvailability(ctx, "node-w1", swarmtypes.NodeAvailabilityActive, swarmtypes.NodeAvailabilityDrain); err != nil {
			t.Fatalf("swap retried: %v", err)
		}
	})

	t.Run("managers", func(t *testing.T) {
		m := newSwarm()
		m.AddNode("m2", swarmtypes.NodeRoleManager)
		m.AddNode("m3", swarmtypes.NodeRoleManager)
		m.SetReachability("m1", swarmtypes.ReachabilityUnreachable)
		if h, err := m.Health(ctx); err != nil || h.Endpoint != "mem://m2" {
			t.Fatalf("one manager down: %+v %v", h, err)
		}
		m.SetNodeState("m2", swarmtypes.NodeStateDown)
		if _, err := m.Nodes(ctx); !errors.Is(err, swarm.ErrQuorumLost) {
			t.Fatalf("two of three down: %v", err)
		}
		m.SetReachability("m3", swarmtypes.ReachabilityUnreachable)
		if _, err := m.Nodes(ctx); !errors.Is(err, swarm.ErrUnreachable) {
			t.Fatalf("all down: %v", err)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	m := newSwarm()
	svc := create(t, m, spec("a", "x:1", 1, nil))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := update(m, svc, "x:2"); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
			m.ConvergeAll()
			_, _ = m.AllServices(context.Background())
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d updates at one version won", won)
	}
}

func TestLatency(t *testing.T) {
	m := newSwarm()
	m.Latency = 50 * time.Millisecond
	ctx := context.Background()

	start := time.Now()
	if _, err := m.Nodes(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < m.Latency {
		t.Errorf("a call took %s, less than the latency %s", took, m.Latency)
	}

	// Calls to one swarm overlap: ten at once take about one latency, not ten.
	start = time.Now()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := m.StackServices(ctx, "numbers"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took > 5*m.Latency {
		t.Errorf("10 concurrent calls took %s: they waited for each other", took)
	}

	// The wait ends with the caller's context, and nothing is applied.
	m.Latency = time.Hour
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := m.CreateService(short, swarm.ServiceWrite{Spec: spec("api", "numbers-api:v1", 1, nil)})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("create with an expiring context: %v after %s", err, time.Since(start))
	}
	if _, ok := m.Service("api"); ok {
		t.Error("the cancelled create was applied")
	}
}

func TestStackServicesFollowTheStackLabel(t *testing.T) {
	m := newSwarm()
	ctx := context.Background()
	names := func(stack string) []string {
		t.Helper()
		svcs, err := m.StackServices(ctx, stack)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range svcs {
			out = append(out, s.Spec.Name)
		}
		return out
	}
	create(t, m, spec("b_web", "numbers-web:v1", 1, map[string]string{StackLabel: "b"}))
	svc := create(t, m, spec("a_api", "numbers-api:v1", 1, map[string]string{StackLabel: "a"}))
	create(t, m, spec("a_web", "numbers-web:v1", 1, map[string]string{StackLabel: "a"}))
	if got := names("a"); !reflect.DeepEqual(got, []string{"a_api", "a_web"}) {
		t.Fatalf("stack a: %v", got)
	}
	// A label written by an update takes the service out of its stack (named a_*, it is
	// in no other: swarm.StackOfService); the rollback puts it back.
	moved := clone(svc.Spec)
	moved.Labels[StackLabel] = "b"
	if _, err := m.UpdateService(ctx, swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: moved}); err != nil {
		t.Fatal(err)
	}
	if a, b := names("a"), names("b"); !reflect.DeepEqual(a, []string{"a_web"}) || !reflect.DeepEqual(b, []string{"b_web"}) {
		t.Fatalf("after the update: a %v, b %v", a, b)
	}
	updated, _ := m.Service("a_api")
	if err := m.RollbackService(ctx, updated.ID, updated.Version); err != nil {
		t.Fatal(err)
	}
	if a, b := names("a"), names("b"); !reflect.DeepEqual(a, []string{"a_api", "a_web"}) || !reflect.DeepEqual(b, []string{"b_web"}) {
		t.Fatalf("after the rollback: a %v, b %v", a, b)
	}
}

func TestLaggingUpdaterStartsOnlyWhenTold(t *testing.T) {
	ctx := context.Background()
	m := New()
	m.AddNode("m1", swarmtypes.NodeRoleManager)
	m.LaggingUpdater = true
	one := uint64(1)
	spec := swarmtypes.ServiceSpec{
		Annotations:  swarmtypes.Annotations{Name: "lag"},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v1"}},
		Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &one}},
	}
	res, err := m.CreateService(ctx, swarm.ServiceWrite{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	task := m.AddTask("lag", "m1", swarmtypes.TaskStateRunning)
	m.Converge("lag")
	svc, _ := m.Service("lag")
	spec.TaskTemplate.ContainerSpec = &swarmtypes.ContainerSpec{Image: "numbers-api:v2"}
	if _, err := m.UpdateService(ctx, swarm.ServiceWrite{ID: res.ID, Version: svc.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if svc, _ := m.Service("lag"); svc.UpdateStatus != nil {
		t.Fatalf("before StartUpdates: %+v", svc.UpdateStatus)
	}
	written, _ := m.Service("lag")
	m.StartUpdates()
	started, _ := m.Service("lag")
	if u := started.UpdateStatus; u == nil || u.State != swarmtypes.UpdateStateUpdating || started.Version.Index <= written.Version.Index {
		t.Fatalf("after StartUpdates: version %d after %d, status %+v", started.Version.Index, written.Version.Index, u)
	}
	m.Converge("lag")
	tasks, _ := m.TasksOfServices(ctx, []string{res.ID})
	if len(tasks) != 1 || tasks[0].ID != task.ID || tasks[0].Spec.ContainerSpec.Image != "numbers-api:v2" {
		t.Fatalf("after the update completed the task runs %+v", tasks)
	}
}
