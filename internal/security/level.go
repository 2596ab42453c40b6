// Package security holds the stack security standards: three levels of what a
// SwarmStack's compose content may ask of the Swarm's nodes (privileged, baseline,
// restricted, after Kubernetes' Pod Security Standards), the check of a rendered stack
// against a level, and where the level in force comes from.
//
// Kubernetes' own implementation (k8s.io/pod-security-admission) checks pod specs; no
// library checks compose content, so the rules are ours, written on Swarm's terms
// (docs/security.md lists them field by field).
package security

import (
	"fmt"
	"strconv"
	"strings"
)

// Level is a security level; a greater Level is stricter.
type Level int

const (
	// Privileged allows anything Swarm accepts.
	Privileged Level = iota
	// Baseline forbids what gives a service the node: host paths outside an allowed
	// list, the Docker socket, capabilities beyond Kubernetes baseline's, the host
	// network, devices, unsafe sysctls, host-mode ports outside an allowed list.
	Baseline
	// Restricted is Baseline plus a non-root user, cap_drop ALL (at most
	// NET_BIND_SERVICE added back), a read-only root filesystem and no bind mounts.
	Restricted
)

// Levels lists every level, least strict first.
var Levels = []Level{Privileged, Baseline, Restricted}

func (l Level) String() string {
	switch l {
	case Privileged:
		return "privileged"
	case Baseline:
		return "baseline"
	case Restricted:
		return "restricted"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel reads a level's name (as the labels, flags and API spell it).
func ParseLevel(s string) (Level, error) {
	for _, l := range Levels {
		if s == l.String() {
			return l, nil
		}
	}
	return Restricted, fmt.Errorf("unknown security level %q: use one of privileged, baseline, restricted", s)
}

// Strictest returns the strictest of the levels (Privileged for none).
func Strictest(levels ...Level) Level {
	out := Privileged
	for _, l := range levels {
		out = max(out, l)
	}
	return out
}

// Namespace labels that set the levels, as Pod Security Admission's
// pod-security.kubernetes.io/{enforce,warn,audit}.
const (
	LabelEnforce = "swarm.swarmops.io/enforce"
	LabelWarn    = "swarm.swarmops.io/warn"
	LabelAudit   = "swarm.swarmops.io/audit"
)

// Modes are the levels in force for one stack: a violation of Enforce stops a new
// revision; one of Warn is reported in status and an event; one of Audit in an event
// and a metric.
type Modes struct {
	Enforce, Warn, Audit Level
	// Problems says which label had a value that is no level (taken as restricted, as
	// Pod Security Admission does: a typo never loosens the policy).
	Problems []string
}

// Resolve computes the modes from the namespace's labels, the operator's default and
// the SwarmCluster's level (empty when unset): the strictest of the three enforces.
// A tenant who may edit SwarmStacks and SwarmClusters but not the namespace can
// tighten the policy, never loosen it.
func Resolve(nsLabels map[string]string, operatorDefault Level, clusterLevel string) Modes {
	var m Modes
	read := func(where, v string) Level {
		if v == "" {
			return Privileged
		}
		l, err := ParseLevel(strings.TrimSpace(v))
		if err != nil {
			m.Problems = append(m.Problems, fmt.Sprintf("%s: %v; taken as restricted", where, err))
		}
		return l
	}
	m.Enforce = Strictest(read("namespace label "+LabelEnforce, nsLabels[LabelEnforce]), operatorDefault,
		read("SwarmCluster spec.securityLevel", clusterLevel))
	m.Warn = read("namespace label "+LabelWarn, nsLabels[LabelWarn])
	m.Audit = read("namespace label "+LabelAudit, nsLabels[LabelAudit])
	return m
}

// ParsePorts reads a comma-separated list of ports ("80,443"), as the operator's flag
// gives it.
func ParsePorts(s string) ([]uint32, error) {
	var out []uint32
	for _, f := range splitList(s) {
		p, err := strconv.ParseUint(f, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("port %q: want a number from 1 to 65535", f)
		}
		out = append(out, uint32(p))
	}
	return out, nil
}

// ParsePaths reads a comma-separated list of absolute host paths.
func ParsePaths(s string) ([]string, error) {
	out := splitList(s)
	for _, p := range out {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("host path %q is not absolute", p)
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
