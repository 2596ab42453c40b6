package controllers

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// Options tune the controllers; the zero value is what production uses.
type Options struct {
	// Now is the clock of maintenance windows (tests move it). Rollouts use real time:
	// they are compared with the swarm's own timestamps.
	Now func() time.Time
}

// Setup registers every controller with the manager, sharing one swarm connection pool.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	hub := swarm.NewHub(mgr.GetLogger().WithName("swarm"))
	if err := (&SwarmClusterReconciler{
		Client: mgr.GetClient(), Hub: hub, Recorder: mgr.GetEventRecorderFor("swarmcluster-controller"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&SwarmStackReconciler{
		Client: mgr.GetClient(), Hub: hub, Renderer: compose.NewCache(256),
		Recorder: mgr.GetEventRecorderFor("swarmstack-controller"), Now: time.Now,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&SwarmNodeMaintenanceReconciler{
		Client: mgr.GetClient(), Hub: hub, Recorder: mgr.GetEventRecorderFor("swarmnodemaintenance-controller"), Now: opts.Now,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return mgr.Add(hubCloser{hub})
}
