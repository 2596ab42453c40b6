package swarm

import (
	"context"
	"errors"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// Swarm is everything the controllers may ask of one Swarm, in the operator's words.
// Conn implements it over the Docker API (fail-over, timeouts, typed errors);
// internal/memswarm implements it in memory, with faults a test can inject. Filters,
// versions read for a write and retries are the implementation's business: callers say
// what they want, not how Docker spells it.
type Swarm interface {
	// Health reads the swarm's ID and nodes through a manager.
	Health(ctx context.Context) (Health, error)
	// Nodes lists the nodes, sorted by hostname.
	Nodes(ctx context.Context) ([]swarm.Node, error)
	// SwapNodeAvailability sets a node's availability to `to` only while it is still
	// `from` (ErrAvailabilityChanged otherwise); a node already at `to` is left alone.
	SwapNodeAvailability(ctx context.Context, nodeID string, from, to swarm.NodeAvailability) error
	// TasksOnNodes lists the tasks placed on any of the nodes, in every state.
	TasksOnNodes(ctx context.Context, nodeIDs []string) ([]swarm.Task, error)
	// TasksOfServices lists the tasks of any of the services, in every state, in one call.
	TasksOfServices(ctx context.Context, serviceIDs []string) ([]swarm.Task, error)

	// StackServices lists the services of a stack (by docker stack deploy's namespace
	// label), sorted by name, with their task counts.
	StackServices(ctx context.Context, stack string) ([]swarm.Service, error)
	// AllServices lists every service of the swarm, with task counts.
	AllServices(ctx context.Context) ([]swarm.Service, error)
	// ServiceByID reads one service by ID, with its task counts (as a list shows them,
	// which an inspect does not); a service that is gone is Docker's NotFound.
	ServiceByID(ctx context.Context, id string) (swarm.Service, error)
	// CreateService creates a service; Docker's warnings come back with its ID.
	CreateService(ctx context.Context, w ServiceWrite) (WriteResult, error)
	// UpdateService writes a new spec at the version the service was read at: a write
	// made meanwhile by someone else makes it fail (ErrVersionConflict).
	UpdateService(ctx context.Context, w ServiceWrite) (WriteResult, error)
	// RollbackService puts a service back to its previous spec, only if it is still at
	// the version the caller read (ErrVersionConflict otherwise). Retried after a lost
	// answer, it reports success instead of swapping the specs back.
	RollbackService(ctx context.Context, id string, at swarm.Version) error
	// RemoveService removes a service; one already gone is no error.
	RemoveService(ctx context.Context, id string) error

	// StackNetworks lists the networks of a stack (swarm-scoped, as a stack deploy makes
	// them); names, when given, keeps those of these exact names only.
	StackNetworks(ctx context.Context, stack string, names ...string) ([]Object, error)
	// NetworkExists tells whether a network of exactly that name exists.
	NetworkExists(ctx context.Context, name string) (bool, error)
	CreateNetwork(ctx context.Context, name string, opts network.CreateOptions) error
	RemoveNetwork(ctx context.Context, id string) error

	// Secrets and Configs list what the owner label names; ownedBy "" lists them all.
	Secrets(ctx context.Context, ownedBy string) ([]Object, error)
	CreateSecret(ctx context.Context, spec swarm.SecretSpec) (string, error)
	RemoveSecret(ctx context.Context, id string) error
	Configs(ctx context.Context, ownedBy string) ([]Object, error)
	CreateConfig(ctx context.Context, spec swarm.ConfigSpec) (string, error)
	RemoveConfig(ctx context.Context, id string) error
	// ConfigData reads a config's data (by ID or name): configs, unlike secrets, can be
	// read back, so an existing config with the same data can be reused.
	ConfigData(ctx context.Context, id string) ([]byte, error)
}

// EventStream is a Swarm whose changes can be followed.
type EventStream interface {
	// Events delivers the swarm's events of the given types until ctx ends or the stream
	// breaks, and returns why. subscribed is called once the stream is set up: every
	// change made after that call is delivered (or the stream ends).
	Events(ctx context.Context, types []events.Type, subscribed func(), deliver func(events.Message)) error
}

// ServiceWrite is one service spec to create or update.
type ServiceWrite struct {
	// ID and Version of the service as read; empty for a create.
	ID      string
	Version swarm.Version
	Spec    swarm.ServiceSpec
	// RegistryAuth is the encoded credential for the image's registry, if any.
	RegistryAuth string
	// QueryRegistry resolves the image's digest through the registry.
	QueryRegistry bool
}

// WriteResult is what Swarm said about a write.
type WriteResult struct {
	ID       string
	Warnings []string
}

// Object is a network, secret or config as the controllers see it.
type Object struct {
	ID     string
	Name   string
	Labels map[string]string
	// Driver is a network's driver.
	Driver string
}

// LabelOwner is the label that says which SwarmStack owns an object; it is the API's
// swarm.swarmops.io/owner, repeated here so this package needs nothing of the API.
const LabelOwner = "swarm.swarmops.io/owner"

// ErrVersionConflict says the object changed since the caller read it.
var ErrVersionConflict = errors.New("the object changed since it was read")

// ErrNoPreviousSpec says a service has nothing to roll back to.
var ErrNoPreviousSpec = errors.New("service has no previous spec")

var _ Swarm = (*Conn)(nil)
