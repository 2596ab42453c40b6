package controllers

import (
	"context"

	"github.com/swarmops/swarm-operator/internal/swarm"
)

// hubCloser closes the swarm connections and event streams when the manager stops.
type hubCloser struct{ hub *swarm.Hub }

func (h hubCloser) Start(ctx context.Context) error {
	<-ctx.Done()
	h.hub.Close()
	return nil
}

// NeedLeaderElection is false: the pool is read by every replica.
func (hubCloser) NeedLeaderElection() bool { return false }
