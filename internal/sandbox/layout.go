package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Naming. Everything a sandbox creates on the host is named after one short prefix
// and the sandbox's instance index, so that CleanupStale can find the leftovers of
// runs that were killed:
//
//	state dir     /run/swarm-operator-sandbox/<idx>/   (per node: <node>/data, exec, dockerd.log, tls, ...)
//	lock file     /run/swarm-operator-sandbox/<idx>.lock (flock: held while the sandbox is in use)
//	bridge        swsbx<idx>                 192.168.(213+idx).1/24
//	veth (host)   swsbx<idx>v<k>             peer is eth0 in the node's namespace
//	netns         swsbx<idx>-<node>          node k has 192.168.(213+idx).(10+k)
//	cgroup parent /swsbx<idx>-<node>         the node's containers
//	iptables      FORWARD -i swsbx<idx> -o swsbx<idx> -j ACCEPT
//
// The state root can be moved with $SWARM_SANDBOX_ROOT.
const (
	prefix       = "swsbx"
	defaultRoot  = "/run/swarm-operator-sandbox"
	maxInstances = 32 // 192.168.213.0/24 .. 192.168.244.0/24
	maxNodes     = 15
	tlsPort      = 2376
	swarmPort    = 2377
)

// StateRoot is the directory that holds the state of every sandbox instance
// ($SWARM_SANDBOX_ROOT or /run/swarm-operator-sandbox).
func StateRoot() string { return rootDir() }

func rootDir() string {
	if r := os.Getenv("SWARM_SANDBOX_ROOT"); r != "" {
		return filepath.Clean(r)
	}
	return defaultRoot
}

func instanceDir(idx int) string { return filepath.Join(rootDir(), strconv.Itoa(idx)) }
func lockPath(idx int) string    { return filepath.Join(rootDir(), strconv.Itoa(idx)+".lock") }
func bridgeName(idx int) string  { return fmt.Sprintf("%s%d", prefix, idx) }
func vethName(idx, k int) string { return fmt.Sprintf("%s%dv%d", prefix, idx, k) }
func netnsName(idx int, node string) string {
	return fmt.Sprintf("%s%d-%s", prefix, idx, node)
}
func cgroupParent(idx int, node string) string { return "/" + netnsName(idx, node) }
func subnetPrefix(idx int) string              { return fmt.Sprintf("192.168.%d.", 213+idx) }
func bridgeIP(idx int) string                  { return subnetPrefix(idx) + "1" }
func nodeIP(idx, k int) string                 { return fmt.Sprintf("%s%d", subnetPrefix(idx), 10+k) }

// bip is the --bip of node k: distinct per node and instance (172.30.0.0/15), away
// from Swarm's default overlay pool (10.0.0.0/8) and the usual docker0/gwbridge ranges.
func bip(idx, k int) string {
	n := idx*16 + k
	return fmt.Sprintf("172.%d.%d.1/24", 30+n/256, n%256)
}

// instanceOf parses the instance index out of a host object name that starts with the
// prefix (swsbx3, swsbx3v1, swsbx3-node1); ok is false for foreign names.
func instanceOf(name string) (int, bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end == 0 || end > 3 {
		return 0, false
	}
	if end < len(rest) && rest[end] != 'v' && rest[end] != '-' {
		return 0, false
	}
	idx, err := strconv.Atoi(rest[:end])
	if err != nil || idx >= maxInstances {
		return 0, false
	}
	return idx, true
}
