package swarm

import (
	"context"

	"github.com/docker/docker/api/types/swarm"
)

// Cached is a Swarm with its ServiceCache. Every port call still goes to the Swarm,
// StackServices included: a read that decides a write reads what it writes. Only
// ObserveStackServices answers from the cache. Service writes are recorded in the cache,
// so it never serves a stack older than the operator's last write to it.
type Cached struct {
	Swarm
	Cache *ServiceCache
}

// ObserveStackServices lists a stack's services for a read that only observes (the
// steady-state pass): from sw's cache when it is synced, else from a manager. cached
// says which: a caller that then decides a write reads again with StackServices.
func ObserveStackServices(ctx context.Context, sw Swarm, stack string) (svcs []swarm.Service, cached bool, err error) {
	if c, ok := sw.(*Cached); ok && c.Cache != nil {
		if svcs, ok := c.Cache.StackServices(stack); ok {
			return svcs, true, nil
		}
	}
	svcs, err = sw.StackServices(ctx, stack)
	return svcs, false, err
}

// CreateService creates the service and records the write, whatever its answer: a
// lost answer may hide a service that exists.
func (c *Cached) CreateService(ctx context.Context, w ServiceWrite) (WriteResult, error) {
	res, err := c.Swarm.CreateService(ctx, w)
	key := res.ID
	if key == "" {
		key = "name:" + w.Spec.Name // a lost answer: it may exist all the same
	}
	c.Cache.wrote(key, StackOfService(w.Spec), 0)
	return res, err
}

// UpdateService writes the service and records the write, whatever its answer: an
// error may come after Swarm applied it.
func (c *Cached) UpdateService(ctx context.Context, w ServiceWrite) (WriteResult, error) {
	res, err := c.Swarm.UpdateService(ctx, w)
	c.Cache.wrote(w.ID, StackOfService(w.Spec), w.Version.Index)
	return res, err
}

// RollbackService rolls the service back and records the write.
func (c *Cached) RollbackService(ctx context.Context, id string, at swarm.Version) error {
	err := c.Swarm.RollbackService(ctx, id, at)
	c.recordByID(id, at.Index)
	return err
}

// RemoveService removes the service and records it gone.
func (c *Cached) RemoveService(ctx context.Context, id string) error {
	err := c.Swarm.RemoveService(ctx, id)
	if err == nil {
		c.Cache.removed(id)
		return nil
	}
	c.recordByID(id, 0)
	return err
}

// recordByID records a write to a service known by ID only.
func (c *Cached) recordByID(id string, at uint64) {
	if stack, ok := c.Cache.stackOf(id); ok {
		c.Cache.wrote(id, stack, at)
		return
	}
	// Not cached: which stack it is in is unknown, so no stack is served until a list.
	c.Cache.unsync()
}
