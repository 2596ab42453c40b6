package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procInfo is what the cleanup needs to know about a process.
type procInfo struct {
	pid     int
	argv0   string // base name of argv[0]
	cmdline string // NULs replaced by spaces
	cgroups string // content of /proc/<pid>/cgroup
	netns   string // "net:[4026532...]"
}

func (p procInfo) String() string {
	c := p.cmdline
	if len(c) > 120 {
		c = c[:120] + "..."
	}
	return fmt.Sprintf("%d (%s)", p.pid, c)
}

// listProcs reads /proc. Processes that vanish meanwhile and zombies are skipped.
func listProcs() []procInfo {
	entries, _ := os.ReadDir("/proc")
	self, parent := os.Getpid(), os.Getppid()
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == parent {
			continue
		}
		if !alive(pid) {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmd) == 0 { // kernel threads have no cmdline
			continue
		}
		argv := bytes.SplitN(cmd, []byte{0}, 2)
		p := procInfo{
			pid:     pid,
			argv0:   filepath.Base(string(argv[0])),
			cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))),
		}
		if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
			p.cgroups = string(cg)
		}
		p.netns, _ = os.Readlink(filepath.Join(dir, "ns", "net"))
		out = append(out, p)
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: comm may contain spaces and parentheses; the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// netnsID returns the "net:[inode]" identity of a named network namespace, or "".
func netnsID(name string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", name), &st); err != nil {
		return ""
	}
	// An unmounted placeholder file is not a namespace (nsfs inodes live on dev 0:4 or similar,
	// but a plain file lives on the /run filesystem); compare with /proc/self/ns/net's device.
	var self syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &self); err == nil && st.Dev != self.Dev {
		return ""
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// sandboxDaemonNames are the programs a node runs; a process whose command line names
// the instance's state directory is only taken for one of ours when it is one of these
// (so that, say, a `tail -f .../dockerd.log` in someone's terminal is left alone).
func isSandboxProgram(argv0 string) bool {
	switch argv0 {
	case "dockerd", "containerd", "runc", "docker-proxy", "docker-init", "nsenter", "unshare":
		return true
	}
	return strings.HasPrefix(argv0, "containerd-shim")
}

// matcher selects the processes that belong to a sandbox instance or one of its nodes.
type matcher struct {
	dirs    []string        // state dirs with trailing slash
	cgroups []string        // ":/swsbx0-node1/" style substrings
	netns   map[string]bool // "net:[...]" of the namespaces
}

func instanceMatcher(idx int) matcher {
	m := matcher{
		dirs:    []string{instanceDir(idx) + "/"},
		cgroups: []string{fmt.Sprintf(":/%s%d-", prefix, idx)},
		netns:   map[string]bool{},
	}
	for _, ns := range listNetns() {
		if i, ok := instanceOf(ns); ok && i == idx {
			if id := netnsID(ns); id != "" {
				m.netns[id] = true
			}
		}
	}
	return m
}

func nodeMatcher(n *Node) matcher {
	m := matcher{
		dirs:    []string{n.Dir + "/"},
		cgroups: []string{":" + cgroupParent(n.s.Instance, n.Name) + "/"},
		netns:   map[string]bool{},
	}
	if id := netnsID(n.Netns); id != "" {
		m.netns[id] = true
	}
	return m
}

func (m matcher) match(p procInfo) bool {
	if p.netns != "" && m.netns[p.netns] {
		return true
	}
	for _, c := range m.cgroups {
		if strings.Contains(p.cgroups, c) {
			return true
		}
	}
	if isSandboxProgram(p.argv0) {
		for _, d := range m.dirs {
			if strings.Contains(p.cmdline+"/", d) {
				return true
			}
		}
	}
	return false
}

func (m matcher) find() []procInfo {
	var out []procInfo
	for _, p := range listProcs() {
		if m.match(p) {
			out = append(out, p)
		}
	}
	return out
}

// killAll SIGKILLs every matching process until none is left or the timeout passes
// (processes may start children while we kill them).
func (m matcher) killAll(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ps := m.find()
		if len(ps) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still running after SIGKILL: %v", ps)
		}
		for _, p := range ps {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitGone waits until pid has exited (or is a zombie).
func waitGone(ctx context.Context, pid int) bool {
	for alive(pid) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// --- starting processes that die with us ---

// Pdeathsig is delivered when the *thread* that started the child exits, and the Go
// runtime may end threads (a goroutine that exits while locked to its thread takes the
// thread with it). Children that must die with this process are therefore started
// from one goroutine locked to a thread that lives as long as the process.
type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

func startCmd(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil || cmd.SysProcAttr.Pdeathsig == 0 {
		return cmd.Start()
	}
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnCh <- r
	return <-r.done
}

// --- small helpers ---

// run runs a command and returns its trimmed combined output; the error includes it.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, s)
	}
	return s, nil
}

// tailFile returns the last n lines of a file, for error messages, without the
// gRPC connection chatter of dockerd (module=grpc) that would hide the cause.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(l, "module=grpc") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// --- mounts ---

// mountsUnder lists mount points at or below any of the given paths, deepest first.
func mountsUnder(paths ...string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		for _, p := range paths {
			if mp == p || strings.HasPrefix(mp, strings.TrimSuffix(p, "/")+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll detaches every mount at or below the given paths.
func unmountAll(paths ...string) error {
	var errs []error
	for i := 0; i < 5; i++ {
		mps := mountsUnder(paths...)
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	if mps := mountsUnder(paths...); len(mps) > 0 {
		return fmt.Errorf("still mounted: %v %w", mps, errors.Join(errs...))
	}
	return nil
}
