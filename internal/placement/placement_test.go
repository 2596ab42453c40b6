package placement_test

import (
	"strings"
	"testing"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/placement"
)

// testNode builds a ready, active node; managers are reachable.
func testNode(id, host string, role swarmtypes.NodeRole, opts ...func(*swarmtypes.Node)) swarmtypes.Node {
	n := swarmtypes.Node{ID: id}
	n.Description.Hostname = host
	n.Spec.Role = role
	n.Spec.Availability = swarmtypes.NodeAvailabilityActive
	n.Status.State = swarmtypes.NodeStateReady
	if role == swarmtypes.NodeRoleManager {
		n.ManagerStatus = &swarmtypes.ManagerStatus{Reachability: swarmtypes.ReachabilityReachable}
	}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func leader(n *swarmtypes.Node) { n.ManagerStatus.Leader = true }
func unreachable(n *swarmtypes.Node) {
	n.ManagerStatus.Reachability = swarmtypes.ReachabilityUnreachable
	n.Status.State = swarmtypes.NodeStateDown
}
func drained(n *swarmtypes.Node)  { n.Spec.Availability = swarmtypes.NodeAvailabilityDrain }
func nodeDown(n *swarmtypes.Node) { n.Status.State = swarmtypes.NodeStateDown }
func labelled(k, v string) func(*swarmtypes.Node) {
	return func(n *swarmtypes.Node) {
		if n.Spec.Labels == nil {
			n.Spec.Labels = map[string]string{}
		}
		n.Spec.Labels[k] = v
	}
}
func engineLabelled(k, v string) func(*swarmtypes.Node) {
	return func(n *swarmtypes.Node) { n.Description.Engine.Labels = map[string]string{k: v} }
}

const (
	manager = swarmtypes.NodeRoleManager
	worker  = swarmtypes.NodeRoleWorker
)

// fiveNodes is the seed scenario's swarm: three managers (node1 leads) and two workers.
func fiveNodes(opts map[string][]func(*swarmtypes.Node)) []swarmtypes.Node {
	return []swarmtypes.Node{
		testNode("id1", "node1", manager, append([]func(*swarmtypes.Node){leader}, opts["node1"]...)...),
		testNode("id2", "node2", manager, opts["node2"]...),
		testNode("id3", "node3", manager, opts["node3"]...),
		testNode("id4", "node4", worker, opts["node4"]...),
		testNode("id5", "node5", worker, opts["node5"]...),
	}
}

func TestMaintenanceNodeSelection(t *testing.T) {
	nodes := fiveNodes(map[string][]func(*swarmtypes.Node){
		"node4": {labelled("zone", "a")},
		"node5": {labelled("zone", "b")},
		"node3": {labelled("zone", "a")},
	})
	cases := map[string]struct {
		spec       swarmv1.SwarmNodeMaintenanceSpec
		nodes      []swarmtypes.Node
		want       []string
		wantReason string
		wantMsg    string
	}{
		"nodes by hostname and by ID": {
			spec: swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"node5", "id3"}},
			want: []string{"node3", "node5"},
		},
		"selector by role": {
			spec: swarmv1.SwarmNodeMaintenanceSpec{NodeSelector: &swarmv1.NodeSelector{Role: "worker"}},
			want: []string{"node4", "node5"},
		},
		"selector by role and label needs both": {
			spec: swarmv1.SwarmNodeMaintenanceSpec{NodeSelector: &swarmv1.NodeSelector{Role: "worker", Labels: map[string]string{"zone": "a"}}},
			want: []string{"node4"},
		},
		"nodes and selector add up without duplicates": {
			spec: swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"node4", "node1"}, NodeSelector: &swarmv1.NodeSelector{Labels: map[string]string{"zone": "a"}}},
			want: []string{"node1", "node3", "node4"},
		},
		"an unknown node is named": {
			spec:       swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"node5", "node9"}},
			want:       []string{"node5"}, // what resolves is still selected: a held node5 stays held
			wantReason: swarmv1.ReasonUnknownNode,
			wantMsg:    `"node9"`,
		},
		"a selector that matches nothing is refused even with nodes listed": {
			spec:       swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"node5"}, NodeSelector: &swarmv1.NodeSelector{Labels: map[string]string{"zone": "c"}}},
			want:       []string{"node5"},
			wantReason: swarmv1.ReasonNoNodesSelected,
			wantMsg:    "zone=c",
		},
		"a hostname shared with a down ghost picks the live node": {
			spec:  swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"node5"}},
			nodes: append(fiveNodes(nil), testNode("ghost", "node5", worker, nodeDown)),
			want:  []string{"id5"},
		},
		"a hostname shared by two live nodes must be named by ID": {
			spec:       swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"node5"}},
			nodes:      append(fiveNodes(nil), testNode("twin", "node5", worker)),
			want:       nil,
			wantReason: swarmv1.ReasonUnknownNode,
			wantMsg:    "use the node ID",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := nodes
			if tc.nodes != nil {
				in = tc.nodes
			}
			got, reason, msg := placement.SelectNodes(tc.spec, in)
			if reason != tc.wantReason || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("reason %q message %q, want %q containing %q", reason, msg, tc.wantReason, tc.wantMsg)
			}
			var names []string
			for _, n := range got {
				if tc.nodes != nil {
					names = append(names, n.ID)
				} else {
					names = append(names, n.Description.Hostname)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("selected %v, want %v", names, tc.want)
			}
		})
	}
}

func TestMaintenanceQuorumGuard(t *testing.T) {
	five := []swarmtypes.Node{
		testNode("m1", "m1", manager, leader), testNode("m2", "m2", manager), testNode("m3", "m3", manager),
		testNode("m4", "m4", manager), testNode("m5", "m5", manager),
	}
	cases := map[string]struct {
		nodes     []swarmtypes.Node
		candidate string
		down      []string
		wantMsg   string // "" means allowed
	}{
		"a worker is never held back by quorum": {
			nodes: fiveNodes(nil), candidate: "id4", down: []string{"id2", "id5"},
		},
		"one of three managers may go": {
			nodes: fiveNodes(nil), candidate: "id2",
		},
		"a second of three managers waits": {
			nodes: fiveNodes(nil), candidate: "id3", down: []string{"id2"},
			wantMsg: "3 managers tolerate 1 in maintenance at once and node2 already is",
		},
		"a held manager counts as in maintenance whatever its availability": {
			nodes: fiveNodes(map[string][]func(*swarmtypes.Node){"node2": {drained}}), candidate: "id3", down: []string{"id2"},
			wantMsg: "node2 already is",
		},
		"a reachable manager drained by design and not held still votes": {
			nodes: fiveNodes(map[string][]func(*swarmtypes.Node){"node2": {drained}}), candidate: "id3",
		},
		"a second of five managers may go": {
			nodes: five, candidate: "m3", down: []string{"m2"},
		},
		"a third of five managers waits": {
			nodes: five, candidate: "m4", down: []string{"m2", "m3"},
			wantMsg: "5 managers tolerate 2",
		},
		"no manager goes while another is unreachable": {
			nodes: fiveNodes(map[string][]func(*swarmtypes.Node){"node3": {unreachable}}), candidate: "id2",
			wantMsg: "manager node3 is not reachable",
		},
		"the only manager never goes": {
			nodes: []swarmtypes.Node{testNode("m1", "m1", manager, leader), testNode("w1", "w1", worker)}, candidate: "m1",
			wantMsg: "1 managers tolerate 0",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			down := map[string]bool{}
			for _, id := range tc.down {
				down[id] = true
			}
			var cand swarmtypes.Node
			for _, n := range tc.nodes {
				if n.ID == tc.candidate {
					cand = n
				}
			}
			got := placement.QuorumGuard(cand, tc.nodes, down)
			if tc.wantMsg == "" && got != "" || !strings.Contains(got, tc.wantMsg) {
				t.Errorf("QuorumGuard = %q, want %q", got, tc.wantMsg)
			}
		})
	}
}

func TestMaintenanceServiceGuard(t *testing.T) {
	replicated := func(name string, replicas, maxPerNode uint64, constraints ...string) swarmtypes.Service {
		s := swarmtypes.Service{ID: name + "-id"}
		s.Spec.Name = name
		s.Spec.Mode.Replicated = &swarmtypes.ReplicatedService{Replicas: &replicas}
		s.Spec.TaskTemplate.Placement = &swarmtypes.Placement{Constraints: constraints, MaxReplicas: maxPerNode}
		return s
	}
	global := swarmtypes.Service{ID: "g"}
	global.Spec.Name = "agent"
	global.Spec.Mode.Global = &swarmtypes.GlobalService{}
	global.Spec.TaskTemplate.Placement = &swarmtypes.Placement{Constraints: []string{"node.hostname==node5"}}

	nodes := fiveNodes(map[string][]func(*swarmtypes.Node){
		"node5": {labelled("disk", "ssd"), engineLabelled("gpu", "yes")},
		"node4": {labelled("disk", "hdd")},
	})
	cases := map[string]struct {
		services  []swarmtypes.Service
		candidate string
		down      []string
		want      []string // substrings, one per named service
	}{
		"a service pinned to the node by hostname would stop": {
			services: []swarmtypes.Service{replicated("db", 1, 0, "node.hostname==node5")}, candidate: "id5",
			want: []string{"db (no other available node matches its placement: node.hostname==node5)"},
		},
		"a service pinned by node ID would stop": {
			services: []swarmtypes.Service{replicated("db", 1, 0, "node.id==id5")}, candidate: "id5",
			want: []string{"db"},
		},
		"a service that may run on other workers is fine": {
			services: []swarmtypes.Service{replicated("api", 4, 0, "node.role==worker")}, candidate: "id5",
		},
		"a worker-only service whose other worker is in maintenance would stop": {
			services: []swarmtypes.Service{replicated("api", 4, 0, "node.role==worker")}, candidate: "id5", down: []string{"id4"},
			want: []string{"api"},
		},
		"a node label only this node has": {
			services: []swarmtypes.Service{replicated("cache", 2, 0, "node.labels.disk==ssd")}, candidate: "id5",
			want: []string{"cache"},
		},
		"values compare case-insensitively as Swarm does": {
			services: []swarmtypes.Service{replicated("cache", 2, 0, "node.labels.disk == SSD")}, candidate: "id5",
			want: []string{"cache"},
		},
		"an engine label only this node has": {
			services: []swarmtypes.Service{replicated("ml", 1, 0, "engine.labels.gpu==yes")}, candidate: "id5",
			want: []string{"ml"},
		},
		"a != constraint that leaves other nodes is fine": {
			services: []swarmtypes.Service{replicated("web", 2, 0, "node.labels.disk!=hdd")}, candidate: "id5",
		},
		"max_replicas_per_node leaves too little room elsewhere": {
			services: []swarmtypes.Service{replicated("web", 5, 1)}, candidate: "id5",
			want: []string{"web (only 4 of 5 replicas fit on the other nodes with max_replicas_per_node 1)"},
		},
		"max_replicas_per_node with room to spare is fine": {
			services: []swarmtypes.Service{replicated("web", 4, 2)}, candidate: "id5",
		},
		"a service the node cannot run is not its concern": {
			services: []swarmtypes.Service{replicated("db", 1, 0, "node.hostname==node4")}, candidate: "id5",
		},
		"a service already unplaceable loses nothing more": {
			services: []swarmtypes.Service{replicated("db", 1, 0, "node.hostname==node4")}, candidate: "id5", down: []string{"id4"},
		},
		"global services are not considered": {
			services: []swarmtypes.Service{global}, candidate: "id5",
		},
		"a service scaled to zero is not considered": {
			services: []swarmtypes.Service{replicated("idle", 0, 0, "node.hostname==node5")}, candidate: "id5",
		},
		"constraints the guard does not model count as matching": {
			services: []swarmtypes.Service{replicated("net", 1, 0, "node.ip==192.168.1.0/24", "node.hostname==node5")}, candidate: "id5",
			want: []string{"net"},
		},
		"every service that would stop is named": {
			services:  []swarmtypes.Service{replicated("b", 1, 0, "node.id==id5"), replicated("a", 1, 0, "node.hostname==node5"), replicated("c", 3, 0)},
			candidate: "id5",
			want:      []string{"a (", "b ("},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			down := map[string]bool{}
			for _, id := range tc.down {
				down[id] = true
			}
			var cand swarmtypes.Node
			for _, n := range nodes {
				if n.ID == tc.candidate {
					cand = n
				}
			}
			got := placement.ServicesThatWouldStop(cand, nodes, tc.services, down)
			if len(got) != len(tc.want) {
				t.Fatalf("named %q, want %d services like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("named %q, want %q", got[i], tc.want[i])
				}
			}
		})
	}
}

func TestUnevenSpreadIgnoresPinnedServicesAndIneligibleNodes(t *testing.T) {
	service := func(replicas uint64, constraints ...string) swarmtypes.Service {
		s := swarmtypes.Service{ID: "svc"}
		s.Spec.Mode.Replicated = &swarmtypes.ReplicatedService{Replicas: &replicas}
		s.Spec.TaskTemplate.Placement = &swarmtypes.Placement{Constraints: constraints}
		return s
	}
	nodes := fiveNodes(map[string][]func(*swarmtypes.Node){"node3": {drained}})
	cases := map[string]struct {
		svc     swarmtypes.Service
		nodes   []swarmtypes.Node
		running map[string]int // by node ID
		want    bool
	}{
		"two more tasks on one node than on another": {
			svc: service(4), running: map[string]int{"id1": 2, "id2": 2}, want: true,
		},
		"one task more is even enough": {
			svc: service(4), running: map[string]int{"id1": 1, "id2": 1, "id4": 1, "id5": 1}, want: false,
		},
		"a drained node is not counted as idle": {
			svc: service(8), running: map[string]int{"id1": 2, "id2": 2, "id4": 2, "id5": 2}, want: false,
		},
		"a service pinned by hostname is left alone, even when two nodes match it": {
			svc:     service(3, "node.hostname==node1"),
			nodes:   append(fiveNodes(nil), testNode("twin", "node1", worker)),
			running: map[string]int{"id1": 3}, want: false,
		},
		"only the nodes the constraints allow count": {
			svc: service(3, "node.role==worker"), running: map[string]int{"id4": 3, "id1": 0}, want: true,
		},
		"a single replica cannot be uneven": {
			svc: service(1), running: map[string]int{"id1": 1}, want: false,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := nodes
			if tc.nodes != nil {
				in = tc.nodes
			}
			if got := placement.Uneven(tc.svc, in, tc.running); got != tc.want {
				t.Errorf("Uneven = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPinnedConstraintsNameTheNode(t *testing.T) {
	for exprs, want := range map[string]bool{
		"node.id==id1":                   true,
		"NODE.Hostname == node1":         true,
		"node.role==worker,node.id==id1": true,
		"node.id!=id1":                   false,
		"node.hostname!=node1":           false,
		"node.labels.zone==a":            false,
		"":                               false,
	} {
		var list []string
		if exprs != "" {
			list = strings.Split(exprs, ",")
		}
		cs, err := placement.ParseConstraints(list)
		if err != nil {
			t.Fatalf("%q: %v", exprs, err)
		}
		if got := cs.Pinned(); got != want {
			t.Errorf("%q: Pinned = %v, want %v", exprs, got, want)
		}
	}
}
