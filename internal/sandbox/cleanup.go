package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// --- instance locks ---

var errBusy = errors.New("sandbox instance in use")

// tryLock takes the instance's lock file (flock, non-blocking). The lock is held for
// as long as the returned file is open: by the process that started the sandbox (or,
// for a detached sandbox, by its daemons). A process killed with SIGKILL loses it, which
// is how CleanupStale tells leftovers from a sandbox that is still in use.
func tryLock(idx int) (*os.File, error) {
	if err := os.MkdirAll(rootDir(), 0o755); err != nil {
		return nil, err
	}
	p := lockPath(idx)
	for attempt := 0; attempt < 5; attempt++ {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, errBusy
			}
			return nil, fmt.Errorf("flock %s: %w", p, err)
		}
		// The owner removes the lock file when it is done; make sure we did not lock a
		// file that was unlinked between our open and our flock.
		fi1, err1 := f.Stat()
		fi2, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(fi1, fi2) {
			_ = f.Truncate(0)
			fmt.Fprintf(f, "%d\n", os.Getpid())
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("could not lock %s", p)
}

func unlock(idx int, f *os.File) {
	if f == nil {
		return
	}
	_ = os.Remove(lockPath(idx)) // while still holding it, see tryLock
	_ = f.Close()
}

// --- cgroups ---

// cgroupDirs lists the instance's container cgroups (the nodes' --cgroup-parent) in
// every mounted hierarchy: /sys/fs/cgroup/swsbxN-* (v2) and /sys/fs/cgroup/*/swsbxN-* (v1).
func cgroupDirs(idx int) []string {
	var out []string
	pat := fmt.Sprintf("%s%d-*", prefix, idx)
	if idx < 0 {
		pat = prefix + "*"
	}
	for _, g := range []string{filepath.Join("/sys/fs/cgroup", pat), filepath.Join("/sys/fs/cgroup", "*", pat)} {
		m, _ := filepath.Glob(g)
		for _, d := range m {
			if _, ok := instanceOf(filepath.Base(d)); ok {
				if fi, err := os.Stat(d); err == nil && fi.IsDir() {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// removeCgroup removes a cgroup directory tree bottom-up (cgroupfs only allows rmdir
// of empty groups; the control files go away with their directory).
func removeCgroup(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// --- instance cleanup ---

// cleanupInstance removes everything of instance idx: processes (SIGKILL), iptables
// rules, namespaces, veths, bridge, mounts, cgroups and the state directory. The
// caller holds the instance's lock. It returns an error naming what could not be removed.
func cleanupInstance(ctx context.Context, idx int, logf func(string, ...any)) error {
	var errs []error
	m := instanceMatcher(idx)
	if ps := m.find(); len(ps) > 0 {
		logf("sandbox %d: killing %d leftover processes", idx, len(ps))
		if err := m.killAll(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, teardownNetwork(ctx, idx)...)
	dir := instanceDir(idx)
	if err := unmountAll(dir); err != nil {
		errs = append(errs, err)
	}
	for _, cg := range cgroupDirs(idx) {
		if err := removeCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	if left := leftovers(ctx, idx); len(left) > 0 {
		errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
	}
	return errors.Join(errs...)
}

// leftovers describes what remains on the host of instance idx (nothing: nil).
func leftovers(ctx context.Context, idx int) []string {
	var left []string
	if ps := instanceMatcher(idx).find(); len(ps) > 0 {
		left = append(left, fmt.Sprintf("processes %v", ps))
	}
	for _, ns := range listNetns() {
		if i, ok := instanceOf(ns); ok && i == idx {
			left = append(left, "netns "+ns)
		}
	}
	for _, l := range listLinks() {
		if i, ok := instanceOf(l); ok && i == idx {
			left = append(left, "link "+l)
		}
	}
	for _, r := range forwardRules(ctx, idx) {
		left = append(left, "iptables "+r)
	}
	if mps := mountsUnder(instanceDir(idx)); len(mps) > 0 {
		left = append(left, fmt.Sprintf("mounts %v", mps))
	}
	for _, cg := range cgroupDirs(idx) {
		left = append(left, "cgroup "+cg)
	}
	if _, err := os.Stat(instanceDir(idx)); err == nil {
		left = append(left, "dir "+instanceDir(idx))
	}
	return left
}

// Leftovers describes what is left on the host of sandbox instances that nobody
// uses any more (what CleanupStale would remove): processes, namespaces, links,
// iptables rules, mounts, cgroups, state directories. Sandboxes in use are not listed
// (see InUse).
func Leftovers() []string {
	ctx := context.Background()
	var left []string
	for _, idx := range knownInstances(ctx) {
		f, err := tryLock(idx)
		if err != nil {
			continue // in use
		}
		for _, l := range leftovers(ctx, idx) {
			left = append(left, fmt.Sprintf("[%d] %s", idx, l))
		}
		unlock(idx, f)
	}
	return left
}

// InUse describes the sandbox instances in use (their lock is held): by which
// process, or detached (hack/sandbox.sh up).
func InUse() []string {
	ctx := context.Background()
	var out []string
	for _, idx := range knownInstances(ctx) {
		f, err := tryLock(idx)
		if err == nil {
			unlock(idx, f)
			continue
		}
		desc := fmt.Sprintf("sandbox %d (%s, bridge %s, %s0/24)", idx, instanceDir(idx), bridgeName(idx), subnetPrefix(idx))
		if isDetached(idx) {
			desc += ": detached (hack/sandbox.sh down removes it)"
		} else if b, err := os.ReadFile(lockPath(idx)); err == nil {
			pid := strings.TrimSpace(string(b))
			cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			desc += fmt.Sprintf(": in use by pid %s (%.80s)", pid, strings.ReplaceAll(string(cmd), "\x00", " "))
		}
		out = append(out, desc)
	}
	return out
}

// knownInstances finds the indices of all instances that have anything on the host.
func knownInstances(ctx context.Context) []int {
	set := map[int]bool{}
	if entries, err := os.ReadDir(rootDir()); err == nil {
		for _, e := range entries {
			name := strings.TrimSuffix(e.Name(), ".lock")
			if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < maxInstances {
				set[i] = true
			}
		}
	}
	for _, n := range append(listNetns(), listLinks()...) {
		if i, ok := instanceOf(n); ok {
			set[i] = true
		}
	}
	for _, cg := range cgroupDirs(-1) {
		if i, ok := instanceOf(filepath.Base(cg)); ok {
			set[i] = true
		}
	}
	for _, r := range forwardRules(ctx, -1) {
		for _, f := range strings.Fields(r) {
			if i, ok := instanceOf(f); ok {
				set[i] = true
			}
		}
	}
	root := rootDir() + "/"
	for _, p := range listProcs() {
		if i := strings.Index(p.cmdline, root); i >= 0 && isSandboxProgram(p.argv0) {
			rest := p.cmdline[i+len(root):]
			if j := strings.IndexByte(rest, '/'); j > 0 {
				if n, err := strconv.Atoi(rest[:j]); err == nil && n < maxInstances {
					set[n] = true
				}
			}
		}
		for _, line := range strings.Split(p.cgroups, "\n") {
			if k := strings.Index(line, ":/"+prefix); k >= 0 {
				if i, ok := instanceOf(strings.SplitN(line[k+2:], "/", 2)[0]); ok {
					set[i] = true
				}
			}
		}
	}
	var out []int
	for i := range set {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// CleanupStale removes the leftovers of earlier sandbox runs that were interrupted
// (killed test binaries, crashed CLIs): processes, network namespaces, veths, bridges,
// iptables rules, mounts, cgroups and state directories named with the sandbox prefix.
// Sandboxes still in use (by a live process of this or another test binary, or a
// detached sandbox of hack/sandbox.sh whose daemons run) are left alone. Safe to call
// at any time, e.g. from TestMain.
func CleanupStale() error {
	return cleanup(false, func(string, ...any) {})
}

// CleanupAll is CleanupStale plus the removal of detached sandboxes (hack/sandbox.sh up).
// Sandboxes owned by live test processes are still left alone.
func CleanupAll() error {
	return cleanup(true, func(string, ...any) {})
}

func cleanup(detachedToo bool, logf func(string, ...any)) error {
	if err := RequireRoot(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	for _, idx := range knownInstances(ctx) {
		f, err := tryLock(idx)
		if errors.Is(err, errBusy) && detachedToo && isDetached(idx) {
			// A detached sandbox's lock is held by its own daemons: stop them first.
			logf("sandbox %d: stopping detached sandbox", idx)
			stopDaemonsByPidfile(ctx, idx, 10*time.Second)
			_ = instanceMatcher(idx).killAll(15 * time.Second)
			f, err = tryLock(idx)
		}
		if errors.Is(err, errBusy) {
			logf("sandbox %d: in use, left alone", idx)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := cleanupInstance(ctx, idx, logf); err != nil {
			errs = append(errs, fmt.Errorf("sandbox %d: %w", idx, err))
		}
		unlock(idx, f)
	}
	return errors.Join(errs...)
}

const detachedMarker = "detached"

func isDetached(idx int) bool {
	_, err := os.Stat(filepath.Join(instanceDir(idx), detachedMarker))
	return err == nil
}

// stopDaemonsByPidfile sends SIGTERM to the dockerd of every node of an instance (found
// through their pid files) and waits up to timeout for them to exit.
func stopDaemonsByPidfile(ctx context.Context, idx int, timeout time.Duration) {
	files, _ := filepath.Glob(filepath.Join(instanceDir(idx), "*", "docker.pid"))
	var pids []int
	for _, pf := range files {
		if pid := readPidfile(pf); pid > 0 {
			if syscall.Kill(pid, syscall.SIGTERM) == nil {
				pids = append(pids, pid)
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, pid := range pids {
		waitGone(wctx, pid)
	}
}

// readPidfile returns the pid in a dockerd pid file when that process is alive and
// is a dockerd whose command line names the pid file's directory; 0 otherwise.
func readPidfile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmd), filepath.Dir(path)+"/") {
		return 0
	}
	return pid
}
