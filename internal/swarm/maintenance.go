package swarm

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// ErrAvailabilityChanged says a node no longer has the availability the caller expected:
// someone else changed it, and the caller's decision is stale.
var ErrAvailabilityChanged = errors.New("node availability changed")

// SwapNodeAvailability sets a node's availability to `to` only while it is still `from`,
// so that a maintenance never overwrites a change someone else made meanwhile. The write
// carries the version the node was read at: a concurrent update makes it fail rather than
// win. When the node already has `to`, nothing is written.
func (c *Conn) SwapNodeAvailability(ctx context.Context, nodeID string, from, to swarm.NodeAvailability) error {
	return c.do(ctx, func(ctx context.Context, cli *client.Client) error {
		node, _, err := cli.NodeInspectWithRaw(ctx, nodeID)
		if err != nil {
			return err
		}
		switch node.Spec.Availability {
		case to:
			return nil
		case from:
		default:
			return fmt.Errorf("%w: node %s is %s, expected %s", ErrAvailabilityChanged, node.Description.Hostname, node.Spec.Availability, from)
		}
		spec := node.Spec
		spec.Availability = to
		return versionConflict(cli.NodeUpdate(ctx, node.ID, node.Version, spec))
	})
}

// TasksOnNodes lists the tasks the swarm placed on any of the given nodes, in every state:
// the caller decides which states still count.
func (c *Conn) TasksOnNodes(ctx context.Context, nodeIDs []string) ([]swarm.Task, error) {
	if len(nodeIDs) == 0 {
		return nil, nil
	}
	f := filters.NewArgs()
	for _, id := range nodeIDs {
		f.Add("node", id)
	}
	return c.tasks(ctx, f)
}
