package memswarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/swarmops/swarm-operator/internal/swarm"
)

// Health reports the swarm's ID, its nodes and the endpoint in use.
func (m *Swarm) Health(ctx context.Context) (swarm.Health, error) {
	var h swarm.Health
	err := m.run(ctx, OpHealth, "", func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		h = swarm.Health{SwarmID: m.ID, Nodes: m.nodeList(), Endpoint: m.endpointLocked(), APIVersion: m.APIVersion}
		return nil
	})
	return h, err
}

// Nodes lists the nodes sorted by hostname.
func (m *Swarm) Nodes(ctx context.Context) ([]swarmtypes.Node, error) {
	var nodes []swarmtypes.Node
	err := m.run(ctx, OpNodes, "", func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		nodes = m.nodeList()
		return nil
	})
	return nodes, err
}

func (m *Swarm) nodeList() []swarmtypes.Node {
	var out []swarmtypes.Node
	for _, h := range sortedKeys(m.nodes) {
		out = append(out, clone(*m.nodes[h]))
	}
	return out
}

// findNode finds a node by ID or hostname, as Docker's API does.
func (m *Swarm) findNode(ref string) (*swarmtypes.Node, error) {
	for _, n := range m.nodes {
		if n.ID == ref {
			return n, nil
		}
	}
	if n, ok := m.nodes[ref]; ok {
		return n, nil
	}
	return nil, errdefs.NotFound(fmt.Errorf("node %s not found", ref))
}

// SwapNodeAvailability sets the node's availability to `to` while it is still `from`.
func (m *Swarm) SwapNodeAvailability(ctx context.Context, nodeID string, from, to swarmtypes.NodeAvailability) error {
	return m.run(ctx, OpSwapNodeAvailability, nodeID, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		n, err := m.findNode(nodeID)
		if err != nil {
			return err
		}
		switch n.Spec.Availability {
		case to:
			return nil
		case from:
		default:
			return fmt.Errorf("%w: node %s is %s, expected %s", swarm.ErrAvailabilityChanged, n.Description.Hostname, n.Spec.Availability, from)
		}
		m.setAvailability(n, to)
		m.afterWrite()
		return nil
	})
}

func (m *Swarm) setAvailability(n *swarmtypes.Node, a swarmtypes.NodeAvailability) {
	n.Spec.Availability = a
	n.Version, n.UpdatedAt = m.nextVersion()
}

// TasksOnNodes lists the tasks on the nodes, in every state. An unknown node is an
// error, as in Docker.
func (m *Swarm) TasksOnNodes(ctx context.Context, nodeIDs []string) ([]swarmtypes.Task, error) {
	if len(nodeIDs) == 0 {
		m.record(OpTasksOnNodes, "", nil) // Conn asks Docker nothing then: no fault applies
		return nil, nil
	}
	var out []swarmtypes.Task
	err := m.run(ctx, OpTasksOnNodes, strings.Join(nodeIDs, ","), func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		ids := map[string]bool{}
		for _, ref := range nodeIDs {
			n, err := m.findNode(ref)
			if err != nil {
				return err
			}
			ids[n.ID] = true
		}
		out = m.taskList(func(t *swarmtypes.Task) bool { return ids[t.NodeID] })
		return nil
	})
	return out, err
}

// TasksOfServices lists the tasks of any of the services (by ID or name), in every
// state; an unknown service is NotFound, as Docker answers.
func (m *Swarm) TasksOfServices(ctx context.Context, serviceIDs []string) ([]swarmtypes.Task, error) {
	var out []swarmtypes.Task
	if len(serviceIDs) == 0 {
		return nil, nil
	}
	err := m.run(ctx, OpTasksOfServices, strings.Join(serviceIDs, ","), func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		ids := map[string]bool{}
		for _, ref := range serviceIDs {
			s, err := m.findService(ref)
			if err != nil {
				return err
			}
			ids[s.ID] = true
		}
		out = m.taskList(func(t *swarmtypes.Task) bool { return ids[t.ServiceID] })
		return nil
	})
	return out, err
}

func (m *Swarm) taskList(keep func(*swarmtypes.Task) bool) []swarmtypes.Task {
	var out []swarmtypes.Task
	for _, t := range m.tasks {
		if keep(t) {
			out = append(out, clone(*t))
		}
	}
	return out
}

// findService finds a service by ID or name, as Docker's API does.
func (m *Swarm) findService(ref string) (*service, error) {
	for _, s := range m.services {
		if s.ID == ref {
			return s, nil
		}
	}
	if s, ok := m.services[ref]; ok {
		return s, nil
	}
	return nil, errdefs.NotFound(fmt.Errorf("service %s not found", ref))
}

// StackServices lists the stack's services sorted by name, with task counts.
func (m *Swarm) StackServices(ctx context.Context, stack string) ([]swarmtypes.Service, error) {
	var out []swarmtypes.Service
	err := m.run(ctx, OpStackServices, stack, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		out = m.serviceList(func(s *service) bool { return s.stack == stack })
		return nil
	})
	return out, err
}

// AllServices lists every service, sorted by name, with task counts.
func (m *Swarm) AllServices(ctx context.Context) ([]swarmtypes.Service, error) {
	var out []swarmtypes.Service
	err := m.run(ctx, OpAllServices, "", func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		out = m.serviceList(func(*service) bool { return true })
		return nil
	})
	return out, err
}

func (m *Swarm) serviceList(keep func(*service) bool) []swarmtypes.Service {
	// Filter first, then sort what is kept: a stack's list must not cost a sort of
	// every service of the swarm (a simulation holds a thousand per swarm).
	var names []string
	for name, s := range m.services {
		if keep(s) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []swarmtypes.Service
	for _, name := range names {
		out = append(out, m.serviceView(m.services[name]))
	}
	return out
}

// serviceView is the service as a list with Status: true shows it.
func (m *Swarm) serviceView(s *service) swarmtypes.Service {
	v := clone(s.Service)
	v.ServiceStatus = &swarmtypes.ServiceStatus{RunningTasks: s.running, DesiredTasks: m.desired(s)}
	if isJob(s.Spec) {
		v.ServiceStatus.CompletedTasks = m.jobTasks(s, swarmtypes.TaskStateComplete)
	}
	return v
}

// desired is the number of tasks Swarm wants running: the replicas of a replicated
// service, one per active ready node for a global one (placement constraints are not
// looked at), 0 for jobs (their tasks want to complete, not to run).
func (m *Swarm) desired(s *service) uint64 {
	switch mode := s.Spec.Mode; {
	case mode.Replicated != nil:
		if mode.Replicated.Replicas == nil {
			return 1
		}
		return *mode.Replicated.Replicas
	case mode.Global != nil:
		var n uint64
		for _, node := range m.nodes {
			if node.Spec.Availability == swarmtypes.NodeAvailabilityActive && node.Status.State == swarmtypes.NodeStateReady {
				n++
			}
		}
		return n
	}
	return 0
}

// CreateService creates a service; its name must be free.
func (m *Swarm) CreateService(ctx context.Context, w swarm.ServiceWrite) (swarm.WriteResult, error) {
	var res swarm.WriteResult
	err := m.run(ctx, OpCreateService, w.Spec.Name, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		in := clone(w.Spec)
		warning := m.clientSideImage(&in, w.QueryRegistry)
		spec, err := m.checkSpec(in)
		if err != nil {
			return err
		}
		if warning != "" {
			res.Warnings = append(res.Warnings, warning)
		}
		if _, taken := m.services[spec.Name]; taken {
			return errdefs.Conflict(fmt.Errorf("rpc error: code = AlreadyExists desc = name conflicts with an existing object: service %s already exists", spec.Name))
		}
		s := &service{}
		s.ID = m.newID("service")
		s.setSpec(spec)
		s.Version, s.CreatedAt = m.nextVersion()
		s.UpdatedAt = s.CreatedAt
		m.services[spec.Name] = s
		m.runJob(s)
		m.emit(events.ActionCreate, s)
		res.ID = s.ID
		m.afterWrite()
		return nil
	})
	return res, err
}

func endpointSpec(spec swarmtypes.ServiceSpec) swarmtypes.EndpointSpec {
	if spec.EndpointSpec != nil {
		return *spec.EndpointSpec
	}
	return swarmtypes.EndpointSpec{Mode: swarmtypes.ResolutionModeVIP}
}

// checkSpec validates a spec as Swarm does and returns it as Swarm stores it: network
// names become IDs, secrets and configs must exist.
func (m *Swarm) checkSpec(in swarmtypes.ServiceSpec) (swarmtypes.ServiceSpec, error) {
	spec := clone(in)
	if spec.Name == "" {
		return spec, errdefs.InvalidParameter(errors.New("rpc error: code = InvalidArgument desc = meta: name must be provided"))
	}
	c := spec.TaskTemplate.ContainerSpec
	if c == nil || c.Image == "" {
		return spec, errdefs.InvalidParameter(errors.New("rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided"))
	}
	// What Swarm fills in on the way in (seen in contract_test).
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	if spec.TaskTemplate.Runtime == "" {
		spec.TaskTemplate.Runtime = swarmtypes.RuntimeContainer
	}
	if c.Isolation == "" {
		c.Isolation = container.IsolationDefault
	}
	if spec.Mode == (swarmtypes.ServiceMode{}) {
		one := uint64(1)
		spec.Mode.Replicated = &swarmtypes.ReplicatedService{Replicas: &one}
	}
	//nolint:staticcheck // the deprecated field still arrives from old clients; Docker moves it too
	if len(spec.Networks) > 0 && len(spec.TaskTemplate.Networks) == 0 {
		spec.TaskTemplate.Networks, spec.Networks = spec.Networks, nil //nolint:staticcheck // see above
	}
	for i, att := range spec.TaskTemplate.Networks {
		n := m.findNetwork(att.Target)
		if n == nil {
			return spec, errdefs.NotFound(fmt.Errorf("network %s not found", att.Target))
		}
		spec.TaskTemplate.Networks[i].Target = n.ID
	}
	for _, ref := range c.Secrets {
		if s, ok := m.secrets[ref.SecretName]; !ok || s.ID != ref.SecretID {
			return spec, errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = secret not found: %s", ref.SecretName))
		}
	}
	for _, ref := range c.Configs {
		if s, ok := m.configs[ref.ConfigName]; !ok || s.ID != ref.ConfigID {
			return spec, errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = config not found: %s", ref.ConfigName))
		}
	}
	return spec, nil
}

// UpdateService writes a new spec at the version the caller read.
func (m *Swarm) UpdateService(ctx context.Context, w swarm.ServiceWrite) (swarm.WriteResult, error) {
	res := swarm.WriteResult{ID: w.ID}
	err := m.run(ctx, OpUpdateService, w.ID, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		s, err := m.findService(w.ID)
		if err != nil {
			return err
		}
		if s.Version.Index != w.Version.Index {
			return outOfSequence()
		}
		in := clone(w.Spec)
		warning := m.clientSideImage(&in, w.QueryRegistry)
		spec, err := m.checkSpec(in)
		if err != nil {
			return err
		}
		if warning != "" {
			res.Warnings = append(res.Warnings, warning)
		}
		if spec.Name != s.Spec.Name {
			return errdefs.NotImplemented(errors.New("rpc error: code = Unimplemented desc = renaming services is not supported"))
		}
		if (spec.Mode.Global != nil) != (s.Spec.Mode.Global != nil) || (spec.Mode.Replicated != nil) != (s.Spec.Mode.Replicated != nil) {
			return errdefs.InvalidParameter(errors.New("rpc error: code = InvalidArgument desc = service mode change is not allowed"))
		}
		prev := s.Spec
		s.PreviousSpec = &prev
		s.setSpec(spec)
		s.Version, s.UpdatedAt = m.nextVersion()
		m.emit(events.ActionUpdate, s)
		// Swarm's updater starts only when the tasks' spec changed: a scale or a label
		// change alone leaves no update status.
		s.UpdateStatus = nil
		s.updatePending = false
		m.runJob(s)
		if tasksChanged(prev, spec) && m.desired(s) > 0 {
			if m.LaggingUpdater {
				s.updatePending = true
			} else {
				s.UpdateStatus = &swarmtypes.UpdateStatus{State: swarmtypes.UpdateStateUpdating, StartedAt: &s.UpdatedAt, Message: "update in progress"}
			}
		}
		m.afterWrite()
		return nil
	})
	return res, err
}

// tasksChanged tells whether Swarm would replace tasks: their template or the endpoint
// changed.
func tasksChanged(a, b swarmtypes.ServiceSpec) bool {
	return !sameJSON(a.TaskTemplate, b.TaskTemplate) || !sameJSON(a.EndpointSpec, b.EndpointSpec)
}

func outOfSequence() error {
	return fmt.Errorf("%w: rpc error: code = Unknown desc = update out of sequence", swarm.ErrVersionConflict)
}

// RollbackService puts the service back to its previous spec, as Conn.RollbackService
// does: the service is read once; the write, which faults may hit, is made at that
// version; a version conflict after it is forgiven when the re-read shows our own
// rollback in force (a lost answer retried on another manager).
func (m *Swarm) RollbackService(ctx context.Context, id string, at swarmtypes.Version) error {
	err := m.rollback(ctx, id, at)
	m.record(OpRollbackService, id, err)
	return err
}

func (m *Swarm) rollback(ctx context.Context, id string, at swarmtypes.Version) error {
	var before swarmtypes.Service
	err := m.read(ctx, func() error {
		s, err := m.findService(id)
		if err != nil {
			return err
		}
		before = clone(s.Service)
		return nil
	})
	if err != nil {
		return err
	}
	if before.Version.Index != at.Index {
		return fmt.Errorf("%w: service %s is at version %d, not %d", swarm.ErrVersionConflict, before.Spec.Name, before.Version.Index, at.Index)
	}
	if before.PreviousSpec == nil {
		return fmt.Errorf("%w: %s", swarm.ErrNoPreviousSpec, before.Spec.Name)
	}
	err = m.do(ctx, OpRollbackService, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		s, err := m.findService(id)
		if err != nil {
			return err
		}
		if s.Version.Index != at.Index {
			return outOfSequence()
		}
		if s.PreviousSpec == nil {
			return errdefs.InvalidParameter(fmt.Errorf("service %s does not have a previous spec", s.Spec.Name))
		}
		cur := s.Spec
		s.setSpec(*s.PreviousSpec)
		s.PreviousSpec = &cur
		s.Version, s.UpdatedAt = m.nextVersion()
		m.emit(events.ActionUpdate, s)
		s.updatePending = false
		s.UpdateStatus = &swarmtypes.UpdateStatus{State: swarmtypes.UpdateStateRollbackStarted, StartedAt: &s.UpdatedAt, Message: "manually requested rollback"}
		m.runJob(s)
		if !tasksChanged(cur, s.Spec) || m.desired(s) == 0 {
			// Nothing to replace: the updater completes the rollback at once.
			m.setUpdateState(s, swarmtypes.UpdateStateRollbackCompleted, "rollback completed")
		}
		m.afterWrite()
		return nil
	})
	if !errors.Is(err, swarm.ErrVersionConflict) {
		return err
	}
	var ours bool
	if rerr := m.read(ctx, func() error {
		s, err := m.findService(id)
		ours = err == nil && rolledBackFrom(before, s.Service)
		return err
	}); rerr == nil && ours {
		return nil
	}
	return err
}

// read runs f under the lock once a manager answers, as a read outside the faulted
// exchanges (Conn's inspect before and after a rollback).
func (m *Swarm) read(ctx context.Context, f func() error) error {
	if err := m.roundTrip(ctx); err != nil {
		return err
	}
	if err := m.managerAnswers(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return f()
}

// rolledBackFrom tells whether `after` is `before` rolled back once (as Conn tells it).
func rolledBackFrom(before, after swarmtypes.Service) bool {
	return after.PreviousSpec != nil && before.PreviousSpec != nil &&
		sameJSON(after.Spec, *before.PreviousSpec) && sameJSON(*after.PreviousSpec, before.Spec)
}

// RemoveService removes a service and its tasks; an unknown one is no error.
func (m *Swarm) RemoveService(ctx context.Context, id string) error {
	return m.run(ctx, OpRemoveService, id, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		s, err := m.findService(id)
		if err != nil {
			return nil
		}
		delete(m.services, s.Spec.Name)
		m.emit(events.ActionRemove, s)
		m.tasks = deleteWhere(m.tasks, func(t *swarmtypes.Task) bool { return t.ServiceID == s.ID })
		m.index++
		m.afterWrite()
		return nil
	})
}

func deleteWhere[T any](s []T, del func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if !del(v) {
			out = append(out, v)
		}
	}
	return out
}

// findNetwork finds a network by ID or name; nil when there is none.
func (m *Swarm) findNetwork(ref string) *netObj {
	for _, n := range m.networks {
		if n.ID == ref {
			return n
		}
	}
	return m.networks[ref]
}

// StackNetworks lists the stack's networks (of the given names, if any), sorted by name.
func (m *Swarm) StackNetworks(ctx context.Context, stack string, names ...string) ([]swarm.Object, error) {
	var out []swarm.Object
	err := m.run(ctx, OpStackNetworks, stack, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, name := range sortedKeys(m.networks) {
			if n := m.networks[name]; n.Labels[StackLabel] == stack && n.Scope == "swarm" && (len(names) == 0 || slices.Contains(names, name)) {
				out = append(out, clone(n.Object))
			}
		}
		return nil
	})
	return out, err
}

// NetworkExists tells whether a network of exactly that name exists.
func (m *Swarm) NetworkExists(ctx context.Context, name string) (bool, error) {
	var found bool
	err := m.run(ctx, OpNetworkExists, name, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		_, found = m.networks[name]
		return nil
	})
	return found, err
}

// CreateNetwork creates a network; its name must be free.
func (m *Swarm) CreateNetwork(ctx context.Context, name string, opts network.CreateOptions) error {
	return m.run(ctx, OpCreateNetwork, name, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, taken := m.networks[name]; taken {
			return errdefs.Conflict(fmt.Errorf("network with name %s already exists", name))
		}
		driver := opts.Driver
		if driver == "" {
			driver = "overlay" // a manager creates swarm networks
		}
		n := &netObj{Object: swarm.Object{ID: m.newID("network"), Name: name, Labels: clone(opts.Labels), Driver: driver}, Scope: "swarm"}
		m.networks[name] = n
		m.index++
		m.afterWrite()
		return nil
	})
}

// RemoveNetwork removes a network unless a service uses it; an unknown one is no error.
func (m *Swarm) RemoveNetwork(ctx context.Context, id string) error {
	return m.run(ctx, OpRemoveNetwork, id, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		n := m.findNetwork(id)
		if n == nil {
			return nil
		}
		if users := m.usersOf(func(spec swarmtypes.ServiceSpec) bool {
			for _, att := range spec.TaskTemplate.Networks {
				if att.Target == n.ID {
					return true
				}
			}
			return false
		}); len(users) > 0 {
			return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = FailedPrecondition desc = network %s is in use by service %s", n.ID, users[0]))
		}
		delete(m.networks, n.Name)
		m.index++
		m.afterWrite()
		return nil
	})
}

// usersOf names the services whose current spec uses something, sorted: by ID for a
// network, by name for a secret or config, as Swarm's messages do.
func (m *Swarm) usersOf(uses func(swarmtypes.ServiceSpec) bool, byName ...bool) []string {
	var out []string
	for _, s := range m.services {
		if uses(s.Spec) {
			if len(byName) > 0 && byName[0] {
				out = append(out, s.Spec.Name)
			} else {
				out = append(out, s.ID)
			}
		}
	}
	sort.Strings(out)
	return out
}

func ownedBy(labels map[string]string, owner string) bool {
	return owner == "" || labels[swarm.LabelOwner] == owner
}

// Secrets lists the secrets the owner label names (all for ""), sorted by name.
func (m *Swarm) Secrets(ctx context.Context, owner string) ([]swarm.Object, error) {
	var out []swarm.Object
	err := m.run(ctx, OpSecrets, owner, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, name := range sortedKeys(m.secrets) {
			if s := m.secrets[name]; ownedBy(s.Spec.Labels, owner) {
				out = append(out, swarm.Object{ID: s.ID, Name: s.Spec.Name, Labels: clone(s.Spec.Labels)})
			}
		}
		return nil
	})
	return out, err
}

// CreateSecret creates a secret; its name must be free.
func (m *Swarm) CreateSecret(ctx context.Context, spec swarmtypes.SecretSpec) (string, error) {
	var id string
	err := m.run(ctx, OpCreateSecret, spec.Name, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, taken := m.secrets[spec.Name]; taken {
			return errdefs.Conflict(fmt.Errorf("rpc error: code = AlreadyExists desc = secret %s already exists", spec.Name))
		}
		s := &swarmtypes.Secret{ID: m.newID("secret"), Spec: clone(spec)}
		s.Spec.Data = nil // Swarm never gives the data back
		if m.secretData == nil {
			m.secretData = map[string][]byte{}
		}
		m.secretData[spec.Name] = append([]byte(nil), spec.Data...) // for SecretData, tests only
		s.Version, s.CreatedAt = m.nextVersion()
		s.UpdatedAt = s.CreatedAt
		m.secrets[spec.Name] = s
		id = s.ID
		m.afterWrite()
		return nil
	})
	return id, err
}

// RemoveSecret removes a secret unless a service uses it; an unknown one is no error.
func (m *Swarm) RemoveSecret(ctx context.Context, id string) error {
	return m.run(ctx, OpRemoveSecret, id, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		s := findByID(m.secrets, id, func(s *swarmtypes.Secret) (string, string) { return s.ID, s.Spec.Name })
		if s == nil {
			return nil
		}
		if users := m.usersOf(func(spec swarmtypes.ServiceSpec) bool {
			for _, ref := range containerSpec(spec).Secrets {
				if ref.SecretID == s.ID {
					return true
				}
			}
			return false
		}, true); len(users) > 0 {
			return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = secret '%s' is in use by the following service: %s", s.Spec.Name, strings.Join(users, ", ")))
		}
		delete(m.secrets, s.Spec.Name)
		m.index++
		m.afterWrite()
		return nil
	})
}

func containerSpec(spec swarmtypes.ServiceSpec) swarmtypes.ContainerSpec {
	if c := spec.TaskTemplate.ContainerSpec; c != nil {
		return *c
	}
	return swarmtypes.ContainerSpec{}
}

// findByID finds an object by ID or name.
func findByID[T any](mp map[string]T, ref string, key func(T) (id, name string)) T {
	var zero T
	for _, v := range mp {
		if id, name := key(v); id == ref || name == ref {
			return v
		}
	}
	return zero
}

// Configs lists the configs the owner label names (all for ""), sorted by name.
func (m *Swarm) Configs(ctx context.Context, owner string) ([]swarm.Object, error) {
	var out []swarm.Object
	err := m.run(ctx, OpConfigs, owner, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, name := range sortedKeys(m.configs) {
			if c := m.configs[name]; ownedBy(c.Spec.Labels, owner) {
				out = append(out, swarm.Object{ID: c.ID, Name: c.Spec.Name, Labels: clone(c.Spec.Labels)})
			}
		}
		return nil
	})
	return out, err
}

// CreateConfig creates a config; its name must be free.
func (m *Swarm) CreateConfig(ctx context.Context, spec swarmtypes.ConfigSpec) (string, error) {
	var id string
	err := m.run(ctx, OpCreateConfig, spec.Name, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, taken := m.configs[spec.Name]; taken {
			return errdefs.Conflict(fmt.Errorf("rpc error: code = AlreadyExists desc = config %s already exists", spec.Name))
		}
		c := &swarmtypes.Config{ID: m.newID("config"), Spec: clone(spec)}
		c.Version, c.CreatedAt = m.nextVersion()
		c.UpdatedAt = c.CreatedAt
		m.configs[spec.Name] = c
		id = c.ID
		m.afterWrite()
		return nil
	})
	return id, err
}

// RemoveConfig removes a config unless a service uses it; an unknown one is no error.
func (m *Swarm) RemoveConfig(ctx context.Context, id string) error {
	return m.run(ctx, OpRemoveConfig, id, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		c := findByID(m.configs, id, func(c *swarmtypes.Config) (string, string) { return c.ID, c.Spec.Name })
		if c == nil {
			return nil
		}
		if users := m.usersOf(func(spec swarmtypes.ServiceSpec) bool {
			for _, ref := range containerSpec(spec).Configs {
				if ref.ConfigID == c.ID {
					return true
				}
			}
			return false
		}, true); len(users) > 0 {
			return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = config '%s' is in use by the following service: %s", c.Spec.Name, strings.Join(users, ", ")))
		}
		delete(m.configs, c.Spec.Name)
		m.index++
		m.afterWrite()
		return nil
	})
}

// ConfigData reads a config's data, by ID or name; an unknown one is NotFound, as Docker
// answers.
func (m *Swarm) ConfigData(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := m.run(ctx, OpConfigData, id, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		c := findByID(m.configs, id, func(c *swarmtypes.Config) (string, string) { return c.ID, c.Spec.Name })
		if c == nil {
			return errdefs.NotFound(fmt.Errorf("config %s not found", id))
		}
		data = clone(c.Spec.Data)
		return nil
	})
	return data, err
}
