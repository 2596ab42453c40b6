package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

// daemonProc is a dockerd this process started.
type daemonProc struct {
	pid    int
	exited chan struct{} // closed when the process has exited and was reaped
	err    error         // exit status, valid after exited is closed
}

// The wrapper that runs in the node's network namespace (entered with nsenter, NOT
// `ip netns exec`, which remounts /sys and hides the cgroup mounts dockerd needs):
// unshare gives the daemon its own hostname (Swarm names nodes after it) and its own
// mount namespace, so the mounts of its containers never show up in (or leak into) the
// host's mount table and vanish with the daemon's last process. Propagation "slave":
// the node still sees the host's unmounts (`ip netns delete` of another node must
// not be held up by a copy of the mount in this namespace). A private tmpfs on
// /run/containerd hides a system containerd (dockerd would use it instead of starting
// its own) and catches the shims' sockets. Every step execs, so the pid we start is
// the dockerd's pid.
const wrapperScript = `hostname "$0" || exit 1
mkdir -p /run/containerd && mount -t tmpfs -o mode=0711 swsbx-containerd /run/containerd || exit 1
exec "$@"`

func (n *Node) dockerdArgs() []string {
	tls := filepath.Join(n.Dir, "tls")
	return []string{
		"--config-file", filepath.Join(n.Dir, "daemon.json"),
		"--data-root", filepath.Join(n.Dir, "data"),
		"--exec-root", filepath.Join(n.Dir, "exec"),
		"--pidfile", filepath.Join(n.Dir, "docker.pid"),
		"-H", n.Socket,
		"-H", fmt.Sprintf("tcp://%s:%d", n.IP, tlsPort),
		"--tlsverify",
		"--tlscacert", filepath.Join(tls, "ca.pem"),
		"--tlscert", filepath.Join(tls, "server-cert.pem"),
		"--tlskey", filepath.Join(tls, "server-key.pem"),
		"--bip", bip(n.s.Instance, n.index),
		"--cgroup-parent", cgroupParent(n.s.Instance, n.Name),
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--shutdown-timeout", "5",
		"--swarm-default-advertise-addr", n.IP,
	}
}

// daemonEnv is our environment without what could make dockerd talk to someone else
// (systemd notification, DOCKER_* settings), plus DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1:
// Swarm tasks use the loaded images without trying a registry first.
func daemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "NOTIFY_SOCKET" || strings.HasPrefix(k, "DOCKER_") || strings.HasPrefix(k, "CONTAINERD_") || k == "LISTEN_FDS" || k == "LISTEN_PID" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1")
}

// launch starts the node's dockerd and returns without waiting for it to serve.
func (n *Node) launch() error {
	for _, d := range []string{"data", "exec", "tls"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o700); err != nil {
			return err
		}
	}
	// Our own config file: a host /etc/docker/daemon.json must not apply.
	if err := os.WriteFile(filepath.Join(n.Dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s starting dockerd for %s\n", time.Now().Format(time.RFC3339Nano), n.Name)

	args := []string{"--net=/run/netns/" + n.Netns, "--",
		"unshare", "--uts", "--mount", "--propagation", "slave", "--",
		"sh", "-c", wrapperScript, n.Name, "dockerd"}
	args = append(args, n.dockerdArgs()...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = daemonEnv()
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if n.s.opts.Detach {
		// Outlive this process; hold the instance lock for as long as a daemon runs.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if n.s.lock != nil {
			cmd.ExtraFiles = []*os.File{n.s.lock}
		}
	} else {
		// Die with this process. SIGTERM lets dockerd stop its containers and containerd;
		// CleanupStale removes whatever a killed run leaves.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	}
	if err := startCmd(cmd); err != nil {
		return fmt.Errorf("start dockerd for %s: %w", n.Name, err)
	}
	p := &daemonProc{pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return nil
}

// waitServing waits until the node answers a ping on its TLS endpoint.
func (n *Node) waitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	c, err := n.api()
	if err != nil {
		return err
	}
	var lastErr error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, lastErr = c.Ping(pctx)
		pcancel()
		if lastErr == nil {
			return nil
		}
		var exited <-chan struct{}
		if p != nil {
			exited = p.exited
		}
		select {
		case <-exited:
			return n.errorf("dockerd exited during start-up (%v)", p.err)
		case <-ctx.Done():
			return n.errorf("dockerd did not answer on %s within %s (last error: %v)", n.Endpoint, timeout, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// errorf makes an error about the node that ends with the tail of its dockerd log.
func (n *Node) errorf(format string, args ...any) error {
	return fmt.Errorf("node %s: %s\n--- last lines of %s ---\n%s", n.Name, fmt.Sprintf(format, args...), n.LogPath, tailFile(n.LogPath, 25))
}

// pid returns the pid of the node's dockerd, or 0 when it does not run.
func (n *Node) pid() int {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p != nil {
		select {
		case <-p.exited:
		default:
			return p.pid
		}
	}
	return readPidfile(filepath.Join(n.Dir, "docker.pid"))
}

// terminate stops the node's dockerd: SIGTERM and up to grace for it to stop its
// containers and containerd, then (or at once when grace is 0) SIGKILL; finally every
// process left of the node (containerd, shims, container processes) is killed. Data
// is kept.
func (n *Node) terminate(ctx context.Context, grace time.Duration) error {
	n.closeAPI()
	if pid := n.pid(); pid > 0 {
		gone := false
		if grace > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			wctx, cancel := context.WithTimeout(ctx, grace)
			gone = waitGone(wctx, pid)
			cancel()
			if !gone {
				n.s.logf("sandbox %d: %s: dockerd did not stop within %s, killing it", n.s.Instance, n.Name, grace)
			}
		}
		if !gone {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
			waitGone(kctx, pid)
			kcancel()
		}
	}
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p != nil {
		select { // reaped by its Wait goroutine
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
	}
	if err := nodeMatcher(n).killAll(10 * time.Second); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	// Nothing of the node runs now. Remove the pid files of dockerd and its containerd:
	// after a SIGKILL, the orphaned containerd can stay a zombie for a while (until
	// init reaps it), and a restarted dockerd that finds its pid alive waits for that
	// "running" containerd until it gives up ("timeout waiting for containerd to start").
	for _, pf := range []string{filepath.Join(n.Dir, "docker.pid"), filepath.Join(n.Dir, "exec", "containerd", "containerd.pid")} {
		_ = os.Remove(pf)
	}
	return nil
}

// api returns the cached client of the node (TLS endpoint), creating it when needed.
func (n *Node) api() (*client.Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cli != nil {
		return n.cli, nil
	}
	c, err := n.s.Client(n)
	if err != nil {
		return nil, err
	}
	n.cli = c
	return c, nil
}

func (n *Node) closeAPI() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cli != nil {
		_ = n.cli.Close()
		n.cli = nil
	}
}
