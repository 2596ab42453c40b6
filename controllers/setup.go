package controllers

import (
	"context"
	"fmt"
	"os"
	"time"

	fluxevents "github.com/fluxcd/pkg/runtime/events"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	ktypes "k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/swarmops/swarm-operator/controllers/swarmcluster"
	"github.com/swarmops/swarm-operator/controllers/swarmnodemaintenance"
	"github.com/swarmops/swarm-operator/controllers/swarmstack"
	"github.com/swarmops/swarm-operator/controllers/swarmstackset"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/security"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// Options tune the controllers; the zero value is what production uses.
type Options struct {
	// Now is the clock of maintenance windows (tests move it). Rollouts use real time:
	// they are compared with the swarm's own timestamps.
	Now func() time.Time
	// NamingKey keys the hashes in the names of secrets and configs; when empty it is
	// read from (or created as) the Secret NamingKeySecret, by default
	// swarm-operator-naming-key in POD_NAMESPACE.
	NamingKey       []byte
	NamingKeySecret ktypes.NamespacedName
	// NoCrossNamespaceRefs refuses spec.sourceRef and spec.dependsOn in another
	// namespace than the SwarmStack's (--no-cross-namespace-refs, as in Flux).
	NoCrossNamespaceRefs bool
	// WatchLabelSelector is the shard this operator serves (see ManagerOptions); Setup
	// only uses it to say at start when it selects nothing.
	WatchLabelSelector string
	// Concurrent is how many SwarmStacks and SwarmClusters are reconciled at once
	// (--concurrent); 0 means DefaultConcurrent.
	Concurrent int
	// Artifacts tunes how Flux source artifacts are fetched and kept; its HostOverride
	// defaults to $SOURCE_CONTROLLER_LOCALHOST.
	Artifacts stack.ArtifactStoreOptions
	// EventsAddr is the address of Flux's notification-controller (--events-addr, as in
	// Flux's controllers): each rollout's start and outcome is posted there. Empty: none.
	EventsAddr string
	// Swarms opens the swarm a SwarmCluster names; nil (production) means Docker
	// connections pooled by the Hub. For simulations and tests only, which put
	// in-memory swarms (internal/memswarm) behind it. Unless they are attached to Hub,
	// the controllers hear no events from them: rollouts are then followed by the
	// rollout poll, and node changes by the SwarmCluster's health interval.
	Swarms reconcile.Swarms
	// Hub is the hub the controllers subscribe to; nil (production) means a new one,
	// with ServiceRelist. Set with Swarms that attach their in-memory swarms to it
	// (Hub.Attach), so that they have the service cache and events production has.
	// It is closed when the manager stops.
	Hub *swarm.Hub
	// StackSecurity is the level every SwarmStack is held to at least
	// (--stack-security-default; the zero value is privileged) and the host paths and
	// ports baseline allows (--stack-security-allowed-host-paths, -ports).
	StackSecurity security.Policy
	// SwarmEndpoints is where SwarmClusters may point the operator: the zero value
	// allows any tcp:// endpoint with mutual TLS and refuses insecure: true and unix://
	// (--swarm-endpoints-allowed, --allow-insecure-swarm-endpoints,
	// --allow-unix-swarm-endpoints). It applies to Swarms too.
	SwarmEndpoints reconcile.EndpointPolicy
	// ServiceRelist is how often each Swarm's service cache lists every service again
	// (--swarm-service-relist; default swarm.DefaultServiceRelist): how old the task
	// counts a pass observes may be, and how long a stream that went silent may hide a
	// change.
	ServiceRelist time.Duration
}

// Setup registers every controller with the manager, sharing one swarm connection pool.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Concurrent <= 0 {
		opts.Concurrent = DefaultConcurrent
	}
	if len(opts.NamingKey) == 0 {
		at := opts.NamingKeySecret
		if at.Name == "" {
			at = defaultNamingKeySecret()
		}
		// The manager's cache is not started yet: read and write the API directly.
		key, err := ensureNamingKey(context.Background(), mgr.GetClient(), mgr.GetAPIReader(), at)
		if err != nil {
			return err
		}
		opts.NamingKey = key
	}
	// The stack controller reads Flux sources; adding their types again is harmless.
	if err := sourcev1.AddToScheme(mgr.GetScheme()); err != nil {
		return err
	}
	if opts.Artifacts.HostOverride == "" {
		opts.Artifacts.HostOverride = os.Getenv("SOURCE_CONTROLLER_LOCALHOST")
	}
	if opts.Artifacts.Logger == nil {
		opts.Artifacts.Logger = mgr.GetLogger().WithName("artifacts")
	}
	artifacts, err := stack.NewArtifactStore(opts.Artifacts)
	if err != nil {
		return err
	}
	if opts.Artifacts.Dir == "" {
		// A temporary cache goes with the manager.
		if err := mgr.Add(artifacts); err != nil {
			return err
		}
	}
	hub := opts.Hub
	if hub == nil {
		hub = swarm.NewHub(mgr.GetLogger().WithName("swarm"))
		hub.ServiceRelist = opts.ServiceRelist
	}
	var swarms reconcile.Swarms = reconcile.NewHubSwarms(hub, mgr.GetCache())
	if opts.Swarms != nil {
		swarms = opts.Swarms
	}
	swarms = reconcile.GuardedSwarms{Swarms: swarms, Policy: opts.SwarmEndpoints}
	// Core events (the old API) are what `kubectl describe` shows; the events.k8s.io
	// recorder that replaces GetEventRecorderFor needs a different interface throughout.
	recorder := mgr.GetEventRecorderFor //nolint:staticcheck // see above
	if err := (&swarmcluster.Reconciler{
		Client: mgr.GetClient(), Hub: hub, Swarms: swarms, Recorder: recorder("swarmcluster-controller"), Concurrent: opts.Concurrent,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	var notifier swarmstack.Notifier
	if opts.EventsAddr != "" {
		// Webhook only: the Kubernetes events are the recorder's above, written as before.
		n, err := fluxevents.NewRecorder(mgr.GetLogger().WithName("notifications"), opts.EventsAddr, "swarm-operator",
			fluxevents.WithScheme(mgr.GetScheme()))
		if err != nil {
			return fmt.Errorf("--events-addr: %w", err)
		}
		notifier = n
	}
	if err := (&swarmstack.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Hub: hub, Swarms: swarms, Renderer: compose.NewCache(256), NamingKey: opts.NamingKey,
		Recorder: recorder("swarmstack-controller"), Now: time.Now, Concurrent: opts.Concurrent,
		Sources:  stack.Sources{Store: artifacts, NoCrossNamespaceRefs: opts.NoCrossNamespaceRefs},
		Security: opts.StackSecurity,
		Notifier: notifier,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&swarmnodemaintenance.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Hub: hub, Swarms: swarms, Recorder: recorder("swarmnodemaintenance-controller"), Now: opts.Now,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	// The set writes SwarmStacks and reads their status: it never opens a Swarm.
	if err := (&swarmstackset.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder("swarmstackset-controller"),
		// Soaks are measured from the stacks' Ready transitions, which carry real time.
		Now: time.Now,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if opts.WatchLabelSelector != "" {
		if err := mgr.Add(emptyShardWarning(mgr, opts.WatchLabelSelector)); err != nil {
			return err
		}
	}
	return mgr.Add(hubCloser{hub})
}
