package swarm

import (
	"context"

	"fmt"
	"sort"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
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
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		nodes, err = cli.NodeList(ctx, swarm.NodeListOptions{})
		return err
	})
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Description.Hostname < nodes[j].Description.Hostname })
	return nodes, err
}

// SetNodeAvailability changes one node's availability, re-reading the node so the write
// is made against its current version.
func (c *Conn) SetNodeAvailability(ctx context.Context, nodeID string, availability swarm.NodeAvailability) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		node, _, err := cli.NodeInspectWithRaw(ctx, nodeID)
		if err != nil {
			return err
		}
		if node.Spec.Availability == availability {
			return nil
		}
		spec := node.Spec
		spec.Availability = availability
		return cli.NodeUpdate(ctx, node.ID, node.Version, spec)
	})
}

// Tasks lists tasks matching the filters (for example node=<id>, desired-state=running).
func (c *Conn) Tasks(ctx context.Context, f filters.Args) ([]swarm.Task, error) {
	var tasks []swarm.Task
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		tasks, err = cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		return err
	})
	return tasks, err
}

// StackServices lists the services labelled with the stack, with their task counts.
func (c *Conn) StackServices(ctx context.Context, stack string) ([]swarm.Service, error) {
	var svcs []swarm.Service
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		svcs, err = cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: stackFilter(stack), Status: true})
		return err
	})
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Spec.Name < svcs[j].Spec.Name })
	return svcs, err
}

// AllServices lists every service of the swarm with task counts.
func (c *Conn) AllServices(ctx context.Context) ([]swarm.Service, error) {
	var svcs []swarm.Service
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		svcs, err = cli.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
		return err
	})
	return svcs, err
}

// Service reads one service by ID or name.
func (c *Conn) Service(ctx context.Context, id string) (swarm.Service, error) {
	var svc swarm.Service
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		svc, _, err = cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		return err
	})
	return svc, err
}

// CreateService creates a service and returns its ID.
func (c *Conn) CreateService(ctx context.Context, spec swarm.ServiceSpec, registryAuth string, queryRegistry bool) (string, error) {
	var id string
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		resp, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: registryAuth, QueryRegistry: queryRegistry})
		id = resp.ID
		return err
	})
	return id, err
}

// UpdateService writes a new spec for a service at the version it was read at.
func (c *Conn) UpdateService(ctx context.Context, id string, version swarm.Version, spec swarm.ServiceSpec, registryAuth string, queryRegistry bool) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		_, err := cli.ServiceUpdate(ctx, id, version, spec, swarm.ServiceUpdateOptions{EncodedRegistryAuth: registryAuth, QueryRegistry: queryRegistry})
		return err
	})
}

// RollbackService asks Swarm to put a service back to its previous spec.
func (c *Conn) RollbackService(ctx context.Context, id string) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		svc, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if svc.PreviousSpec == nil {
			return fmt.Errorf("service %s has no previous spec to roll back to", svc.Spec.Name)
		}
		_, err = cli.ServiceUpdate(ctx, id, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"})
		return err
	})
}

// RemoveService removes a service.
func (c *Conn) RemoveService(ctx context.Context, id string) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		return ignoreNotFound(cli.ServiceRemove(ctx, id))
	})
}

// StackNetworks lists the networks labelled with the stack.
func (c *Conn) StackNetworks(ctx context.Context, stack string) ([]network.Summary, error) {
	var nets []network.Summary
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		nets, err = cli.NetworkList(ctx, network.ListOptions{Filters: stackFilter(stack)})
		return err
	})
	return nets, err
}

// NetworkExists tells whether a swarm-scoped network of that name exists.
func (c *Conn) NetworkExists(ctx context.Context, name string) (bool, error) {
	var found bool
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
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

// Secrets lists secrets matching the filters.
func (c *Conn) Secrets(ctx context.Context, f filters.Args) ([]swarm.Secret, error) {
	var out []swarm.Secret
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		out, err = cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
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

// Configs lists configs matching the filters.
func (c *Conn) Configs(ctx context.Context, f filters.Args) ([]swarm.Config, error) {
	var out []swarm.Config
	err := c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		var err error
		out, err = cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
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

// StackFilter selects the objects docker stack deploy labelled with the stack.
func stackFilter(stack string) filters.Args {
	return filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+stack))
}

// StackFilter is exported for callers that list secrets or configs of a stack.
func StackFilter(stack string) filters.Args { return stackFilter(stack) }

func ignoreNotFound(err error) error {
	if err != nil && cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
