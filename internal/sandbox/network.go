package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The sandbox network: one Linux bridge per sandbox on the host, a veth pair per node
// whose peer is the node namespace's eth0. The host has .1 on the bridge, so the TCP
// endpoints of the nodes are reachable from the host. The namespaces have no default
// route: all traffic stays between the host and the nodes, and anything that tries to
// reach the outside (a registry lookup) fails at once instead of timing out.

func setupBridge(ctx context.Context, idx int) error {
	br := bridgeName(idx)
	steps := [][]string{
		{"link", "add", "name", br, "type", "bridge"},
		{"addr", "add", bridgeIP(idx) + "/24", "dev", br},
		{"link", "set", br, "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	// The host engine (and others) set the FORWARD policy to DROP; bridged traffic
	// goes through FORWARD when br_netfilter is loaded. Inserting at the top of FORWARD
	// works with or without a host engine (whose own rules only concern its bridges).
	if _, err := run(ctx, "iptables", "-w", "5", "-I", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"); err != nil {
		return err
	}
	return nil
}

func setupNodeNet(ctx context.Context, idx, k int, ns string) error {
	veth := vethName(idx, k)
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", veth, "master", bridgeName(idx), "up"},
		{"-n", ns, "addr", "add", nodeIP(idx, k) + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	return nil
}

// listNetns returns the names under /run/netns (what `ip netns list` shows).
func listNetns() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// listLinks returns the names of the host's network interfaces.
func listLinks() []string {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// forwardRules returns our ACCEPT rules ("-A FORWARD -i swsbxN -o swsbxN -j ACCEPT")
// in FORWARD and DOCKER-USER, for instance idx or (idx < 0) any instance.
func forwardRules(ctx context.Context, idx int) []string {
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil
	}
	var out []string
	for _, chain := range []string{"FORWARD", "DOCKER-USER"} {
		s, err := run(ctx, "iptables", "-w", "5", "-S", chain)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(s, "\n") {
			f := strings.Fields(line)
			if len(f) < 4 || f[0] != "-A" {
				continue
			}
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "-i" {
					if j, ok := instanceOf(f[i+1]); ok && (idx < 0 || j == idx) && f[i+1] == bridgeName(j) {
						out = append(out, line)
					}
				}
			}
		}
	}
	return out
}

// teardownNetwork removes the instance's namespaces, veths, bridge and iptables rules.
// Processes in the namespaces must be gone already.
func teardownNetwork(ctx context.Context, idx int) []error {
	var errs []error
	for _, rule := range forwardRules(ctx, idx) {
		args := append([]string{"-w", "5"}, strings.Fields(rule)...)
		args[2] = "-D"
		if _, err := run(ctx, "iptables", args...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range listNetns() {
		if i, ok := instanceOf(ns); ok && i == idx {
			if _, err := run(ctx, "ip", "netns", "delete", ns); err != nil {
				// ip netns delete = umount + unlink; finish by hand when it half failed.
				p := filepath.Join("/run/netns", ns)
				_ = unmountAll(p)
				if rerr := os.Remove(p); rerr != nil && !os.IsNotExist(rerr) {
					errs = append(errs, err)
				}
			}
		}
	}
	// veths vanish with their namespace; remove any left and then the bridge.
	for _, l := range listLinks() {
		if i, ok := instanceOf(l); ok && i == idx && l != bridgeName(idx) {
			if _, err := run(ctx, "ip", "link", "delete", l); err != nil && linkExists(l) {
				errs = append(errs, err)
			}
		}
	}
	if linkExists(bridgeName(idx)) {
		if _, err := run(ctx, "ip", "link", "delete", bridgeName(idx)); err != nil && linkExists(bridgeName(idx)) {
			errs = append(errs, err)
		}
	}
	return errs
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// subnetInUse reports whether the host already has an address or route in the
// instance's /24 (another network of the machine, not ours).
func subnetInUse(ctx context.Context, idx int) (bool, string) {
	for _, args := range [][]string{{"-4", "-o", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		s, err := run(ctx, "ip", args...)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, subnetPrefix(idx)) || strings.Contains(line, fmt.Sprintf("192.168.%d.0/", 213+idx)) {
				return true, line
			}
		}
	}
	return false, ""
}
