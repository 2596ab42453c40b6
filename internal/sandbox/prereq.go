package sandbox

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// RequireRoot returns an error unless the process runs as root: the sandbox creates
// network namespaces, a bridge, iptables rules and runs dockerd.
func RequireRoot() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the Swarm sandbox needs root (euid is %d): run the tests as root, e.g. `sudo -E go test ./...`", os.Geteuid())
	}
	return nil
}

// requiredBinaries are looked up in PATH by Available.
var requiredBinaries = []struct{ name, pkg string }{
	{"dockerd", "docker.io"},
	{"containerd", "containerd (docker.io depends on it)"},
	{"runc", "runc (docker.io depends on it)"},
	{"ip", "iproute2"},
	{"iptables", "iptables"},
	{"nsenter", "util-linux"},
	{"unshare", "util-linux"},
}

// Available reports why a sandbox cannot be started on this machine, or nil. The
// message names everything that is missing and how to install it
// (hack/install-prereqs.sh installs all of it on Debian/Ubuntu).
//
// Tests skip when it returns an error, except under CI=true, where they must fail:
// see SkipOrFail.
func Available() error {
	var problems []string
	if err := RequireRoot(); err != nil {
		problems = append(problems, err.Error())
	}
	var missing []string
	for _, b := range requiredBinaries {
		if _, err := exec.LookPath(b.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", b.name, b.pkg))
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "missing commands: "+strings.Join(missing, ", "))
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		problems = append(problems, "no network namespace support (/proc/self/ns/net)")
	}
	if len(problems) == 0 {
		return nil
	}
	msg := "Swarm sandbox unavailable: " + strings.Join(problems, "; ")
	if len(missing) > 0 {
		msg += ". On Debian/Ubuntu run `sudo hack/install-prereqs.sh`"
	}
	return errors.New(msg)
}

// InCI reports whether CI=true is set: then a missing prerequisite is a failure, not a
// reason to skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// TB is the part of testing.TB that SkipOrFail uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// SkipOrFail checks Available: when the sandbox cannot run it skips the test with the
// reason, or fails it under CI=true.
func SkipOrFail(t TB) {
	t.Helper()
	if err := Available(); err != nil {
		if InCI() {
			t.Fatalf("%v (CI=true: a missing prerequisite is an error)", err)
		}
		t.Skipf("%v", err)
	}
}

// VIPSupported reports whether the kernel can do Swarm's virtual-IP load balancing
// and the ingress routing mesh, which need IPVS (CONFIG_IP_VS). Without it (e.g. some
// VM kernels without modules) services still run and overlay networks still work,
// but a service name only resolves to working addresses with endpoint_mode dnsrr, and
// published ports only work in mode host. The string says why.
func VIPSupported() (bool, string) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return true, "ip_vs loaded"
	}
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err == nil {
		var b []byte
		for _, c := range uts.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		if m, _ := filepath.Glob(filepath.Join("/lib/modules", string(b), "kernel/net/netfilter/ipvs/ip_vs.ko*")); len(m) > 0 {
			return true, "ip_vs module available"
		}
	}
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			cfg, _ := io.ReadAll(zr)
			if bytes.Contains(cfg, []byte("\nCONFIG_IP_VS=y")) || bytes.Contains(cfg, []byte("\nCONFIG_IP_VS=m")) {
				return true, "kernel has CONFIG_IP_VS"
			}
			return false, "kernel built without CONFIG_IP_VS: no Swarm VIPs nor ingress routing mesh (use endpoint_mode dnsrr and host-mode ports)"
		}
	}
	return false, "no IPVS found (no /proc/net/ip_vs, no ip_vs module): Swarm VIPs and the ingress routing mesh will not work (use endpoint_mode dnsrr and host-mode ports)"
}
