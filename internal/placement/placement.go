// Package placement holds the pure node decisions of maintenance: which nodes a
// SwarmNodeMaintenance selects, whether taking one more node down keeps the managers'
// quorum and the services running, and where Swarm may place a service's tasks (its
// placement constraints as the scheduler reads them). It reads the swarm's state as
// Docker reports it and changes nothing.
package placement

import (
	"fmt"
	"sort"
	"strings"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// SelectNodes resolves spec.nodes (hostnames or IDs) and spec.nodeSelector against the
// swarm's nodes. The result is sorted by hostname and has no duplicates. A reason is
// returned (UnknownNode, NoNodesSelected) when the spec names a node the swarm does not
// have or its selector matches nothing: the user must fix the spec, and no new node is
// taken meanwhile. The nodes that could be resolved are still returned then, so that a
// held node that is still selected is not let go before its window ends.
func SelectNodes(spec swarmv1.SwarmNodeMaintenanceSpec, nodes []swarmtypes.Node) (selected []swarmtypes.Node, reason, msg string) {
	picked := map[string]swarmtypes.Node{}
	var unknown []string
	for _, ref := range spec.Nodes {
		n, problem := findNode(nodes, ref)
		if problem != "" {
			unknown = append(unknown, problem)
			continue
		}
		picked[n.ID] = n
	}
	matched := -1
	if sel := spec.NodeSelector; sel != nil {
		matched = 0
		for _, n := range nodes {
			if selectorMatches(sel, n) {
				picked[n.ID] = n
				matched++
			}
		}
	}
	for _, n := range picked {
		selected = append(selected, n)
	}
	sort.Slice(selected, func(i, j int) bool { return Hostname(selected[i]) < Hostname(selected[j]) })
	switch {
	case len(unknown) > 0:
		return selected, swarmv1.ReasonUnknownNode, fmt.Sprintf("The swarm has no node %s (nodes: %s)", strings.Join(unknown, ", "), strings.Join(hostnames(nodes), ", "))
	case matched == 0:
		return selected, swarmv1.ReasonNoNodesSelected, fmt.Sprintf("nodeSelector %s matches no node of the swarm", describeSelector(spec.NodeSelector))
	case len(selected) == 0:
		return nil, swarmv1.ReasonNoNodesSelected, "Neither nodes nor nodeSelector selects a node"
	}
	return selected, "", ""
}

// findNode finds a node by ID or hostname. A hostname can repeat in a swarm (a machine
// that left and joined again keeps a down ghost): the live node wins, and two live
// nodes with one name must be named by ID.
func findNode(nodes []swarmtypes.Node, ref string) (swarmtypes.Node, string) {
	var byName []swarmtypes.Node
	for _, n := range nodes {
		if n.ID == ref {
			return n, ""
		}
		if Hostname(n) == ref {
			byName = append(byName, n)
		}
	}
	if len(byName) > 1 {
		var live []swarmtypes.Node
		for _, n := range byName {
			if n.Status.State != swarmtypes.NodeStateDown {
				live = append(live, n)
			}
		}
		byName = live
	}
	switch len(byName) {
	case 0:
		return swarmtypes.Node{}, fmt.Sprintf("%q", ref)
	case 1:
		return byName[0], ""
	}
	return swarmtypes.Node{}, fmt.Sprintf("%q (several live nodes have this hostname: use the node ID)", ref)
}

func selectorMatches(sel *swarmv1.NodeSelector, n swarmtypes.Node) bool {
	if sel.Role != "" && string(n.Spec.Role) != sel.Role {
		return false
	}
	for k, v := range sel.Labels {
		if got, ok := n.Spec.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func describeSelector(sel *swarmv1.NodeSelector) string {
	var parts []string
	if sel.Role != "" {
		parts = append(parts, "role="+sel.Role)
	}
	keys := make([]string, 0, len(sel.Labels))
	for k := range sel.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+sel.Labels[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Hostname names a node as messages and status do: its hostname, or its ID when Docker
// reports none.
func Hostname(n swarmtypes.Node) string {
	if n.Description.Hostname != "" {
		return n.Description.Hostname
	}
	return n.ID
}

func hostnames(nodes []swarmtypes.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, Hostname(n))
	}
	return out
}

// IsManager tells whether the node is a Swarm manager (it votes in Raft).
func IsManager(n swarmtypes.Node) bool { return n.Spec.Role == swarmtypes.NodeRoleManager }

// IsLeader tells whether the node is the Raft leader.
func IsLeader(n swarmtypes.Node) bool { return n.ManagerStatus != nil && n.ManagerStatus.Leader }

// managerReachable: a manager counts towards quorum when Raft reaches it and it is up.
func managerReachable(n swarmtypes.Node) bool {
	return n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarmtypes.ReachabilityReachable &&
		n.Status.State == swarmtypes.NodeStateReady
}

// QuorumGuard says why the manager cand may not enter maintenance, or "". down holds the
// IDs of the nodes held for maintenance (by this resource or another one). Draining keeps
// a manager in Raft, but maintenance usually means a reboot: the guard counts a held
// manager as one Raft may lose, whatever its availability. A manager drained by design
// and held by no maintenance still votes, so it is not in down; if it is unreachable the
// guard sees that by itself. A swarm of N managers tolerates (N-1)/2 of them down, and
// only while the others are all reachable.
func QuorumGuard(cand swarmtypes.Node, nodes []swarmtypes.Node, down map[string]bool) string {
	if !IsManager(cand) {
		return ""
	}
	total := 0
	var inMaintenance, unreachable []string
	for _, n := range nodes {
		if !IsManager(n) {
			continue
		}
		total++
		if n.ID == cand.ID {
			continue
		}
		if down[n.ID] {
			inMaintenance = append(inMaintenance, Hostname(n))
		} else if !managerReachable(n) {
			unreachable = append(unreachable, Hostname(n))
		}
	}
	tolerated := (total - 1) / 2
	switch {
	case len(unreachable) > 0:
		return fmt.Sprintf("manager %s waits: manager %s is not reachable, and every other manager must be while one is in maintenance",
			Hostname(cand), strings.Join(unreachable, ", "))
	case len(inMaintenance)+1 > tolerated:
		msg := fmt.Sprintf("manager %s waits: %d managers tolerate %d in maintenance at once", Hostname(cand), total, tolerated)
		if len(inMaintenance) > 0 {
			msg += fmt.Sprintf(" and %s already is", strings.Join(inMaintenance, ", "))
		}
		return msg
	}
	return ""
}

// ServicesThatWouldStop names the replicated services that could run fewer tasks if cand
// joined the nodes in maintenance (down): their placement constraints match no other
// available node, or max_replicas_per_node leaves too little room on the others. Global
// services and jobs are not considered: a global task only belongs on its own node.
// Resource reservations are not modelled.
func ServicesThatWouldStop(cand swarmtypes.Node, nodes []swarmtypes.Node, services []swarmtypes.Service, down map[string]bool) []string {
	var out []string
	for _, svc := range services {
		mode := svc.Spec.Mode.Replicated
		if mode == nil || mode.Replicas == nil || *mode.Replicas == 0 {
			continue
		}
		want := *mode.Replicas
		var placement swarmtypes.Placement
		if p := svc.Spec.TaskTemplate.Placement; p != nil {
			placement = *p
		}
		constraints, err := ParseConstraints(placement.Constraints)
		if err != nil {
			continue // Swarm would not schedule it either; nothing to protect
		}
		before := placeable(want, placement.MaxReplicas, countEligible(nodes, constraints, down, ""))
		after := placeable(want, placement.MaxReplicas, countEligible(nodes, constraints, down, cand.ID))
		if after >= before {
			continue
		}
		if after == 0 {
			out = append(out, fmt.Sprintf("%s (no other available node matches its placement%s)", svc.Spec.Name, describeConstraints(placement.Constraints)))
			continue
		}
		out = append(out, fmt.Sprintf("%s (only %d of %d replicas fit on the other nodes with max_replicas_per_node %d)", svc.Spec.Name, after, want, placement.MaxReplicas))
	}
	sort.Strings(out)
	return out
}

// countEligible counts the nodes the scheduler could place a task on: active, ready, not
// in maintenance, not except, and matching the constraints.
func countEligible(nodes []swarmtypes.Node, constraints Constraints, down map[string]bool, except string) uint64 {
	var n uint64
	for _, node := range nodes {
		if node.ID == except || down[node.ID] || node.Spec.Availability != swarmtypes.NodeAvailabilityActive ||
			node.Status.State != swarmtypes.NodeStateReady || !constraints.Match(node) {
			continue
		}
		n++
	}
	return n
}

// placeable is how many of want tasks fit on eligible nodes, with at most maxPerNode on
// each (0: no limit).
func placeable(want, maxPerNode, eligible uint64) uint64 {
	if eligible == 0 {
		return 0
	}
	if maxPerNode == 0 {
		return want
	}
	return min(want, eligible*maxPerNode)
}

func describeConstraints(cs []string) string {
	if len(cs) == 0 {
		return ""
	}
	return ": " + strings.Join(cs, ", ")
}

// Constraint is one placement constraint, "key==value" or "key!=value", as Swarm reads
// it: keys and values compare case-insensitively, label names exactly.
type Constraint struct {
	key, value string
	equal      bool
}

// Constraints are a service's placement constraints: a node must match them all.
type Constraints []Constraint

// ParseConstraints reads a service's placement constraints (Placement.Constraints); an
// expression Swarm would refuse is an error.
func ParseConstraints(exprs []string) (Constraints, error) {
	out := make(Constraints, 0, len(exprs))
	for _, e := range exprs {
		c, err := parseConstraint(e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseConstraint(expr string) (Constraint, error) {
	for _, op := range []string{"==", "!="} {
		if k, v, ok := strings.Cut(expr, op); ok {
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "" || v == "" {
				break
			}
			return Constraint{key: k, value: v, equal: op == "=="}, nil
		}
	}
	return Constraint{}, fmt.Errorf("placement constraint %q: want key==value or key!=value", expr)
}

// Match tells whether the scheduler may place a task on node n as far as the
// constraints go (availability and state aside).
func (cs Constraints) Match(n swarmtypes.Node) bool {
	for _, c := range cs {
		if !c.matches(n) {
			return false
		}
	}
	return true
}

// matches reads a constraint against a node. Keys the guard does not model (node.ip,
// node.platform.*, engine.labels on old engines...) count as matching: the guard then
// errs towards the constraints it knows.
func (c Constraint) matches(n swarmtypes.Node) bool {
	got, known := c.nodeValue(n)
	if !known {
		return true
	}
	return strings.EqualFold(got, c.value) == c.equal
}

func (c Constraint) nodeValue(n swarmtypes.Node) (string, bool) {
	key := strings.ToLower(c.key)
	switch {
	case key == "node.id":
		return n.ID, true
	case key == "node.hostname":
		return n.Description.Hostname, true
	case key == "node.role":
		return string(n.Spec.Role), true
	case key == "node.platform.os":
		return n.Description.Platform.OS, true
	case key == "node.platform.arch":
		return n.Description.Platform.Architecture, true
	case strings.HasPrefix(key, "node.labels."):
		return n.Spec.Labels[c.key[len("node.labels."):]], true
	case strings.HasPrefix(key, "engine.labels."):
		return n.Description.Engine.Labels[c.key[len("engine.labels."):]], true
	}
	return "", false
}

// Pinned tells whether a constraint names the node (node.id or node.hostname ==):
// spreading is not the service's to have.
func (cs Constraints) Pinned() bool {
	for _, c := range cs {
		if k := strings.ToLower(c.key); c.equal && (k == "node.id" || k == "node.hostname") {
			return true
		}
	}
	return false
}

// Uneven tells whether a replicated service, not pinned to nodes, runs unevenly: its
// busiest eligible node (active, ready, matching its constraints) runs two or more tasks
// more than its idlest one. running counts the service's running tasks by node ID.
func Uneven(svc swarmtypes.Service, nodes []swarmtypes.Node, running map[string]int) bool {
	mode := svc.Spec.Mode.Replicated
	if mode == nil || mode.Replicas == nil || *mode.Replicas < 2 {
		return false
	}
	var placement swarmtypes.Placement
	if pl := svc.Spec.TaskTemplate.Placement; pl != nil {
		placement = *pl
	}
	constraints, err := ParseConstraints(placement.Constraints)
	if err != nil || constraints.Pinned() {
		return false
	}
	lo, hi, eligible := -1, 0, 0
	for _, n := range nodes {
		if n.Spec.Availability != swarmtypes.NodeAvailabilityActive || n.Status.State != swarmtypes.NodeStateReady || !constraints.Match(n) {
			continue
		}
		eligible++
		c := running[n.ID]
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return eligible >= 2 && hi-lo >= 2
}
