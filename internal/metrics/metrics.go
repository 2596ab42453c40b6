// Package metrics holds the operator's Prometheus metrics, served on the manager's
// metrics endpoint beside controller-runtime's own.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// DockerRequests counts Docker API requests by endpoint, method, kind of object
	// (the path's first segment: services, networks, tasks, ...) and status code
	// ("error" when no response came back).
	DockerRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarm_operator_docker_requests_total",
		Help: "Docker API requests by endpoint, method, kind of object (services, networks, ...) and HTTP status code (error: no response).",
	}, []string{"endpoint", "method", "kind", "code"})

	// RolloutsStarted counts rollouts the operator started, per stack.
	RolloutsStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarm_operator_rollouts_started_total",
		Help: "Stack rollouts started.",
	}, []string{"namespace", "stack"})

	// RolloutsFinished counts rollouts by outcome (Completed, RolledBack, ...).
	RolloutsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarm_operator_rollouts_finished_total",
		Help: "Stack rollouts finished, by outcome.",
	}, []string{"namespace", "stack", "outcome"})

	// RolloutDuration is the time from a rollout's start to its end.
	RolloutDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "swarm_operator_rollout_duration_seconds",
		Help:    "Time from the write of a new revision to the end of its rollout, by outcome.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800},
	}, []string{"outcome"})

	// ServiceUpdateState is 1 for the update state each service of a stack is in.
	ServiceUpdateState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_service_update_state",
		Help: "1 for the UpdateStatus.State Swarm reports for the service (none when it never updated).",
	}, []string{"namespace", "stack", "service", "state"})

	// ClusterReachable is 1 while a manager of the cluster answers.
	ClusterReachable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_cluster_reachable",
		Help: "1 when a manager of the SwarmCluster answers and quorum holds, else 0.",
	}, []string{"namespace", "cluster"})

	// ManagersReachable is the number of reachable managers of a cluster.
	ManagersReachable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_cluster_managers_reachable",
		Help: "Managers reachable in the SwarmCluster's Raft.",
	}, []string{"namespace", "cluster"})

	// ManagersQuorum is the quorum size of a cluster.
	ManagersQuorum = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_cluster_managers_quorum",
		Help: "Managers the SwarmCluster's Raft needs: floor(total/2)+1.",
	}, []string{"namespace", "cluster"})

	// NodesInMaintenance is the number of nodes a maintenance holds.
	NodesInMaintenance = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_nodes_in_maintenance",
		Help: "Nodes a SwarmNodeMaintenance currently holds drained or paused.",
	}, []string{"namespace", "maintenance"})

	// MaintenanceInWindow is 1 while a maintenance's window is open.
	MaintenanceInWindow = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_maintenance_in_window",
		Help: "1 while the SwarmNodeMaintenance's window is open, else 0.",
	}, []string{"namespace", "maintenance"})

	// StackRevisionHeld is 1 while a gate holds a stack's new revision back, by reason
	// (Frozen, MaintenanceInProgress).
	StackRevisionHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_stack_revision_held",
		Help: "1 while the SwarmStack's new revision waits, by reason (Frozen, MaintenanceInProgress), else 0.",
	}, []string{"namespace", "stack", "reason"})

	// MaintenanceWaitingForRollouts is 1 while a maintenance waits for rollouts to end.
	MaintenanceWaitingForRollouts = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_maintenance_waiting_for_rollouts",
		Help: "1 while the SwarmNodeMaintenance waits for SwarmStack rollouts on its cluster, else 0.",
	}, []string{"namespace", "maintenance"})

	// StackPolicyViolations is how many violations of the security level of each mode
	// (enforce, warn, audit) a stack's rendered revision has; audit reports only here and
	// in an event.
	StackPolicyViolations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "swarm_operator_stack_policy_violations",
		Help: "Violations of the security level in force for each mode (enforce, warn, audit) by the SwarmStack's rendered revision.",
	}, []string{"namespace", "stack", "mode", "level"})

	// ServicesRebalanced counts services force-updated after a window to spread them.
	ServicesRebalanced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarm_operator_services_rebalanced_total",
		Help: "Services a SwarmNodeMaintenance force-updated after its window to spread their tasks again.",
	}, []string{"namespace", "maintenance"})

	// StackRenders counts stack passes that rendered the compose files and those that
	// skipped it because the inputs were those of the revision in force.
	StackRenders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarm_operator_stack_renders_total",
		Help: "SwarmStack passes by render: rendered, or skipped (inputs unchanged since the revision in force).",
	}, []string{"render"})
)

// vectors are every metric above, registered together and reset together.
var vectors = []interface {
	prometheus.Collector
	Reset()
}{
	DockerRequests, RolloutsStarted, RolloutsFinished, RolloutDuration,
	ServiceUpdateState, ClusterReachable, ManagersReachable, ManagersQuorum, NodesInMaintenance, MaintenanceInWindow,
	StackRevisionHeld, MaintenanceWaitingForRollouts, ServicesRebalanced, StackPolicyViolations, StackRenders,
}

func init() {
	for _, v := range vectors {
		ctrlmetrics.Registry.MustRegister(v)
	}
}

// Reset drops every series, as a restarted process starts without them: for benchmarks
// that restart the operator within one process, where series of stacks the new
// instance never touched would otherwise stay (and be gathered) from the old one.
func Reset() {
	for _, v := range vectors {
		v.Reset()
	}
}
