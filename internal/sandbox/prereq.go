package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
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
	return errors.New("Swarm sandbox unavailable: " + strings.Join(problems, "; ") +
		". On Debian/Ubuntu run `sudo hack/install-prereqs.sh`")
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
