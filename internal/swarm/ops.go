package swarm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// Health is the state of the swarm as one manager sees it.
type Health struct {
	SwarmID  string
	Nodes    []swarm.Node
	Endpoint string
	// APIVersion is the version negotiated with Endpoint.
	APIVersion string
}

// Health reads the swarm ID and the node list through a manager.
func (c *Conn) Health(ctx context.Context) (Health, error) {
	// The SwarmCluster's probe: it goes through a parked swarm to see it recover.
	ctx = probe(ctx)
	info, err := c.Info(ctx)
	if err != nil {
		return Health{}, err
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return Health{}, err
	}
	ep, ver := c.Endpoint()
	return Health{SwarmID: info.Swarm.Cluster.ID, Nodes: nodes, Endpoint: ep, APIVersion: ver}, nil
}

// Nodes lists the nodes of the swarm, sorted by hostname.
func (c *Conn) Nodes(ctx context.Context) ([]swarm.Node, error) {
	var nodes []swarm.Node
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		nodes, err = cli.NodeList(ctx, swarm.NodeListOptions{})
		return err
	})
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Description.Hostname < nodes[j].Description.Hostname })
	return nodes, err
}

func (c *Conn) tasks(ctx context.Context, f filters.Args) ([]swarm.Task, error) {
	var tasks []swarm.Task
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		tasks, err = cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		return err
	})
	return tasks, err
}

// TasksOfServices lists the tasks of any of the services, in every state.
func (c *Conn) TasksOfServices(ctx context.Context, serviceIDs []string) ([]swarm.Task, error) {
	if len(serviceIDs) == 0 {
		return nil, nil
	}
	f := filters.NewArgs()
	for _, id := range serviceIDs {
		f.Add("service", id)
	}
	return c.tasks(ctx, f)
}

// StackServices lists the stack's services (StackOfService), with their task counts.
// The name filter is a prefix that Swarm looks up in its name index; alone, the label
// filter costs the manager a pass over every service of the swarm (16 ms at 2,500
// services against 1 ms with the prefix, measured on dockerd 20.10).
func (c *Conn) StackServices(ctx context.Context, stack string) ([]swarm.Service, error) {
	var svcs []swarm.Service
	f := stackFilter(stack)
	f.Add("name", stack+"_")
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		svcs, err = cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f, Status: true})
		return err
	})
	// The name filter is a prefix, case aside: keep exactly what StackOfService keeps.
	svcs = slices.DeleteFunc(svcs, func(s swarm.Service) bool { return StackOfService(s.Spec) != stack })
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Spec.Name < svcs[j].Spec.Name })
	return svcs, err
}

// AllServices lists every service of the swarm with task counts.
func (c *Conn) AllServices(ctx context.Context) ([]swarm.Service, error) {
	var svcs []swarm.Service
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		svcs, err = cli.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
		return err
	})
	return svcs, err
}

// ServiceByID reads one service with its task counts: a list by ID, as an inspect has
// no counts. Swarm finds the ID through an index, not by scanning every service.
func (c *Conn) ServiceByID(ctx context.Context, id string) (swarm.Service, error) {
	var svcs []swarm.Service
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		svcs, err = cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("id", id)), Status: true})
		return err
	})
	if err != nil {
		return swarm.Service{}, err
	}
	// The id filter matches prefixes.
	for _, svc := range svcs {
		if svc.ID == id {
			return svc, nil
		}
	}
	return swarm.Service{}, errdefs.NotFound(fmt.Errorf("service %s not found", id))
}

func (c *Conn) inspectService(ctx context.Context, id string) (swarm.Service, error) {
	var svc swarm.Service
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		svc, _, err = cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		return err
	})
	return svc, err
}

// CreateService creates a service and returns its ID and Docker's warnings.
func (c *Conn) CreateService(ctx context.Context, w ServiceWrite) (WriteResult, error) {
	var res WriteResult
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		resp, err := cli.ServiceCreate(ctx, w.Spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: w.RegistryAuth, QueryRegistry: w.QueryRegistry})
		res = WriteResult{ID: resp.ID, Warnings: resp.Warnings}
		return err
	})
	return res, err
}

// UpdateService writes a new spec for a service at the version it was read at.
func (c *Conn) UpdateService(ctx context.Context, w ServiceWrite) (WriteResult, error) {
	var res WriteResult
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		resp, err := cli.ServiceUpdate(ctx, w.ID, w.Version, w.Spec, swarm.ServiceUpdateOptions{EncodedRegistryAuth: w.RegistryAuth, QueryRegistry: w.QueryRegistry})
		res = WriteResult{ID: w.ID, Warnings: resp.Warnings}
		return versionConflict(err)
	})
	return res, err
}

// RollbackService asks Swarm to put a service back to its previous spec. The service is
// read once, outside the fail-over loop: a retry on the next manager after the first one
// applied the rollback and its answer was lost then meets a version conflict, and the
// re-read tells that our own rollback is in force, instead of swapping the specs back.
func (c *Conn) RollbackService(ctx context.Context, id string, at swarm.Version) error {
	svc, err := c.inspectService(ctx, id)
	if err != nil {
		return err
	}
	if svc.Version.Index != at.Index {
		return fmt.Errorf("%w: service %s is at version %d, not %d", ErrVersionConflict, svc.Spec.Name, svc.Version.Index, at.Index)
	}
	if svc.PreviousSpec == nil {
		return fmt.Errorf("%w: %s", ErrNoPreviousSpec, svc.Spec.Name)
	}
	err = c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		_, err := cli.ServiceUpdate(ctx, id, at, svc.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"})
		return versionConflict(err)
	})
	if !errors.Is(err, ErrVersionConflict) {
		return err
	}
	now, rerr := c.inspectService(ctx, id)
	if rerr == nil && rolledBackFrom(svc, now) {
		return nil
	}
	return err
}

// rolledBackFrom tells whether `after` is `before` rolled back once: Swarm swaps the two
// specs as they are.
func rolledBackFrom(before, after swarm.Service) bool {
	return after.PreviousSpec != nil && before.PreviousSpec != nil &&
		reflect.DeepEqual(after.Spec, *before.PreviousSpec) && reflect.DeepEqual(*after.PreviousSpec, before.Spec)
}

// versionConflict types Swarm's "update out of sequence", which Docker passes on as text.
func versionConflict(err error) error {
	if err != nil && strings.Contains(err.Error(), "update out of sequence") {
		return fmt.Errorf("%w: %w", ErrVersionConflict, err)
	}
	return err
}

// RemoveService removes a service.
func (c *Conn) RemoveService(ctx context.Context, id string) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		return ignoreNotFound(cli.ServiceRemove(ctx, id))
	})
}

// StackNetworks lists the swarm-scoped networks labelled with the stack, of the given
// names if any. Swarm goes through every network for a label; with names it looks them
// up in its name index first (1 ms against 8 ms of dockerd CPU per list at 500 networks,
// measured on dockerd 20.10).
func (c *Conn) StackNetworks(ctx context.Context, stack string, names ...string) ([]Object, error) {
	var out []Object
	// Swarm-scoped only, as a stack's networks are: the daemon then leaves its local
	// networks out of the list it filters.
	f := stackFilter(stack)
	f.Add("scope", "swarm")
	for _, name := range names {
		f.Add("name", name)
	}
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		out = out[:0]
		for _, n := range nets {
			// The daemon's own name filter also matches by pattern: keep exact names.
			if len(names) == 0 || slices.Contains(names, n.Name) {
				out = append(out, Object{ID: n.ID, Name: n.Name, Labels: n.Labels, Driver: n.Driver})
			}
		}
		return err
	})
	return out, err
}

// NetworkExists tells whether a swarm-scoped network of that name exists.
func (c *Conn) NetworkExists(ctx context.Context, name string) (bool, error) {
	var found bool
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		for _, n := range nets {
			found = found || n.Name == name
		}
		return err
	})
	return found, err
}

// CreateNetwork creates a network.
func (c *Conn) CreateNetwork(ctx context.Context, name string, opts network.CreateOptions) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		_, err := cli.NetworkCreate(ctx, name, opts)
		return err
	})
}

// RemoveNetwork removes a network.
func (c *Conn) RemoveNetwork(ctx context.Context, id string) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		return ignoreNotFound(cli.NetworkRemove(ctx, id))
	})
}

// Secrets lists the secrets the owner label names, or all of them for "".
func (c *Conn) Secrets(ctx context.Context, ownedBy string) ([]Object, error) {
	var out []Object
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		list, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: ownerFilter(ownedBy)})
		out = out[:0]
		for _, s := range list {
			out = append(out, Object{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels})
		}
		return err
	})
	return out, err
}

// CreateSecret creates a secret and returns its ID.
func (c *Conn) CreateSecret(ctx context.Context, spec swarm.SecretSpec) (string, error) {
	var id string
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		resp, err := cli.SecretCreate(ctx, spec)
		id = resp.ID
		return err
	})
	return id, err
}

// RemoveSecret removes a secret.
func (c *Conn) RemoveSecret(ctx context.Context, id string) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		return ignoreNotFound(cli.SecretRemove(ctx, id))
	})
}

// Configs lists the configs the owner label names, or all of them for "".
func (c *Conn) Configs(ctx context.Context, ownedBy string) ([]Object, error) {
	var out []Object
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		list, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: ownerFilter(ownedBy)})
		out = out[:0]
		for _, s := range list {
			out = append(out, Object{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels})
		}
		return err
	})
	return out, err
}

// CreateConfig creates a config and returns its ID.
func (c *Conn) CreateConfig(ctx context.Context, spec swarm.ConfigSpec) (string, error) {
	var id string
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		resp, err := cli.ConfigCreate(ctx, spec)
		id = resp.ID
		return err
	})
	return id, err
}

// RemoveConfig removes a config.
func (c *Conn) RemoveConfig(ctx context.Context, id string) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		return ignoreNotFound(cli.ConfigRemove(ctx, id))
	})
}

// ConfigData reads a config's data.
func (c *Conn) ConfigData(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		cfg, _, err := cli.ConfigInspectWithRaw(ctx, id)
		data = cfg.Spec.Data
		return err
	})
	return data, err
}

// stackFilter selects the objects docker stack deploy labelled with the stack.
func stackFilter(stack string) filters.Args {
	return filters.NewArgs(filters.Arg("label", StackLabel+"="+stack))
}

func ownerFilter(owner string) filters.Args {
	if owner == "" {
		return filters.Args{}
	}
	return filters.NewArgs(filters.Arg("label", LabelOwner+"="+owner))
}

func ignoreNotFound(err error) error {
	if err != nil && cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
