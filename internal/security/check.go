package security

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/swarmops/swarm-operator/internal/compose"
)

// Policy is a level and what the platform allows at baseline.
type Policy struct {
	Level Level
	// AllowedHostPaths are host paths a baseline stack may bind-mount, with what is
	// under them (a prefix of path elements: /srv allows /srv/www, not /srv2). The
	// Docker socket and the directories above it are never allowed. Restricted
	// allows no bind mount at all.
	AllowedHostPaths []string
	// AllowedHostPorts are the ports a stack may publish in host mode (on the node's
	// own network stack, around the routing mesh).
	AllowedHostPorts []uint32
}

// Violation is one thing in the compose content that the level forbids.
type Violation struct {
	File    string // the compose file that writes the key (the last one, when several do)
	Line    int    // 0 when unknown
	Service string // compose service key
	Field   string // the compose key, e.g. volumes[0], cap_add, ports[1]
	Level   Level  // the level that forbids it
	Msg     string
}

func (v Violation) String() string {
	where := v.File
	if v.Line > 0 {
		where += ":" + strconv.Itoa(v.Line)
	}
	if where != "" {
		where += ": "
	}
	return fmt.Sprintf("%sservice %q: %s: %s (forbidden at level %s)", where, v.Service, v.Field, v.Msg, v.Level)
}

// dockerSockets are where the Docker daemon listens on a Linux node; a bind mount of
// one of them, or of a directory above it, gives the daemon to the container.
var dockerSockets = []string{"/var/run/docker.sock", "/run/docker.sock"}

// baselineCaps are the capabilities Kubernetes' baseline standard allows to add.
var baselineCaps = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// safeSysctls are Kubernetes' safe sysctls: namespaced, and unable to affect other
// containers on the node.
var safeSysctls = []string{
	"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
}

// Check returns what in the stack's compose content the policy forbids, by service and
// field, sorted. It reads the merged project the stack was rendered from: keys Swarm
// ignores (privileged, devices, network_mode, pid, ipc) are refused too, so that the
// level does not depend on what today's conversion drops. files are those the stack was
// rendered from, read again only to name the file and line of a violation.
func Check(st *compose.Stack, files []compose.File, p Policy) []Violation {
	proj := st.Project()
	if p.Level == Privileged || proj == nil {
		return nil
	}
	var locate compose.Locator
	at := func(path ...string) (string, int) {
		if locate == nil {
			locate = compose.NewLocator(files)
		}
		return locate(path...)
	}
	var out []Violation
	for _, key := range sortedKeys(proj.Services) {
		c := &checker{locate: at, proj: proj, key: key, svc: proj.Services[key], p: p}
		c.baseline()
		if p.Level >= Restricted {
			c.restricted()
		}
		out = append(out, c.out...)
	}
	return out
}

type checker struct {
	locate compose.Locator
	proj   *types.Project
	key    string
	svc    types.ServiceConfig
	p      Policy
	out    []Violation
}

// add records a violation of the key at path (below the service) in the file that
// writes it.
func (c *checker) add(field string, at []string, format string, args ...any) {
	file, line := c.locate(append([]string{"services", c.key}, at...)...)
	c.out = append(c.out, Violation{File: file, Line: line, Service: c.key, Field: field, Level: c.p.Level, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) baseline() {
	s := c.svc
	if s.Privileged {
		c.add("privileged", []string{"privileged"}, "a privileged container owns the node (Swarm ignores the key, and it is refused all the same)")
	}
	for _, k := range []struct{ field, v string }{{"network_mode", s.NetworkMode}, {"pid", s.Pid}, {"ipc", s.Ipc}, {"userns_mode", s.UserNSMode}} {
		if k.v == "host" {
			c.add(k.field, []string{k.field}, "the host's namespace is forbidden")
		}
	}
	if len(s.Devices) > 0 {
		c.add("devices", []string{"devices"}, "host devices are forbidden")
	}
	c.volumes()
	c.capabilities()
	c.networks()
	c.sysctls()
	c.ports()
}

// volumes: bind mounts only under an allowed host path, never the Docker socket; a
// local volume with driver_opts o=bind is a bind mount too.
func (c *checker) volumes() {
	for i, v := range c.svc.Volumes {
		field, at := fmt.Sprintf("volumes[%d]", i), []string{"volumes", strconv.Itoa(i)}
		switch v.Type {
		case types.VolumeTypeBind:
			c.hostPath(field, at, v.Source, "bind mount of")
		case types.VolumeTypeNamedPipe:
			c.add(field, at, "a host named pipe (%q) is forbidden", v.Source)
		case types.VolumeTypeVolume, "":
			if dev, ok := localBind(c.proj.Volumes[v.Source]); ok && v.Source != "" {
				c.hostPath(field, at, dev, fmt.Sprintf("volume %q binds", v.Source))
			}
		}
	}
}

// localBind: a volume of the local driver with the bind option mounts a host path.
func localBind(vol types.VolumeConfig) (device string, ok bool) {
	if vol.External || vol.Driver != "" && vol.Driver != "local" {
		return "", false
	}
	for _, o := range strings.Split(vol.DriverOpts["o"], ",") {
		if o = strings.TrimSpace(o); o == "bind" || o == "rbind" {
			return vol.DriverOpts["device"], true
		}
	}
	return "", false
}

func (c *checker) hostPath(field string, at []string, source, what string) {
	// Symlinks are the node's business: the check is on the path as written, cleaned of
	// "..", "." and repeated or trailing slashes.
	clean := path.Clean("/" + source)
	for _, sock := range dockerSockets {
		if under(sock, clean) {
			c.add(field, at, "%s host path %q exposes the Docker socket %s", what, source, sock)
			return
		}
	}
	if path.Base(clean) == "docker.sock" {
		c.add(field, at, "%s host path %q is a Docker socket", what, source)
		return
	}
	if c.p.Level >= Restricted {
		c.add(field, at, "%s host path %q: no host path may be mounted", what, source)
		return
	}
	for _, allowed := range c.p.AllowedHostPaths {
		if under(clean, path.Clean("/"+allowed)) {
			return
		}
	}
	c.add(field, at, "%s host path %q is outside the allowed host paths%s", what, source, listed(c.p.AllowedHostPaths))
}

// under: p is dir or below it.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// normCap spells a capability as Docker does: upper case with CAP_ (ALL stays ALL).
func normCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

func (c *checker) capabilities() {
	if c.p.Level >= Restricted {
		return // restricted allows less; restricted() says so once
	}
	for i, raw := range c.svc.CapAdd {
		cp := normCap(raw)
		if !slices.Contains(baselineCaps, cp) {
			c.add("cap_add", []string{"cap_add", strconv.Itoa(i)}, "capability %q is not in the baseline list%s", raw, listed(baselineCaps))
		}
	}
}

// networks: attaching to Swarm's "host" network is host networking.
func (c *checker) networks() {
	for _, key := range sortedKeys(c.svc.Networks) {
		nw := c.proj.Networks[key]
		name := nw.Name
		if name == "" && bool(nw.External) {
			name = key
		}
		if name == "host" {
			c.add("networks", []string{"networks", key}, "network %q is the host's network", key)
		}
	}
}

func (c *checker) sysctls() {
	for _, name := range sortedKeys(c.svc.Sysctls) {
		// Kubernetes accepts the slash spelling too (kernel/shm_rmid_forced).
		if !slices.Contains(safeSysctls, strings.ReplaceAll(name, "/", ".")) {
			c.add("sysctls", []string{"sysctls", name}, "sysctl %q is not in the safe list%s", name, listed(safeSysctls))
		}
	}
}

// ports: a port published in host mode binds the node's own network stack.
func (c *checker) ports() {
	for i, pc := range c.svc.Ports {
		if pc.Mode != "host" {
			continue
		}
		field, at := fmt.Sprintf("ports[%d]", i), []string{"ports", strconv.Itoa(i)}
		port, err := publishedPort(pc.Published)
		if err != nil {
			c.add(field, at, "host-mode port %d: %v", pc.Target, err)
			continue
		}
		if !slices.Contains(c.p.AllowedHostPorts, port) {
			c.add(field, at, "host-mode published port %d is not in the allowed host ports%s", port, listedPorts(c.p.AllowedHostPorts))
		}
	}
}

// publishedPort reads the published port (rendering refused ranges already). An empty
// one in host mode is one the node picks: not in any list.
func publishedPort(published string) (uint32, error) {
	if published == "" {
		return 0, fmt.Errorf("no published port: the node would pick one, which no allowed list covers")
	}
	p, err := strconv.ParseUint(published, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("published port %q is not a number", published)
	}
	return uint32(p), nil
}

func (c *checker) restricted() {
	s := c.svc
	if user, _, _ := strings.Cut(s.User, ":"); isRoot(user) {
		what := fmt.Sprintf("user %q is root", s.User)
		if s.User == "" {
			what = "no user is set (the image's, root unless the image says otherwise)"
		}
		c.add("user", []string{"user"}, "%s; set a non-root user", what)
	}
	drop := map[string]bool{}
	for _, d := range s.CapDrop {
		drop[normCap(d)] = true
	}
	if !drop["ALL"] {
		c.add("cap_drop", []string{"cap_drop"}, "cap_drop must contain ALL")
	}
	for i, raw := range s.CapAdd {
		if normCap(raw) != "CAP_NET_BIND_SERVICE" {
			c.add("cap_add", []string{"cap_add", strconv.Itoa(i)}, "capability %q: only NET_BIND_SERVICE may be added", raw)
		}
	}
	if !s.ReadOnly {
		c.add("read_only", []string{"read_only"}, "the root filesystem must be read-only (read_only: true)")
	}
}

// maxListed bounds a message: a status condition is cut at 4 KiB, and ten violations say
// enough to start fixing.
const maxListed = 10

// Message says what level l forbids, as status, events and the CLI say it.
func Message(l Level, vs []Violation) string {
	parts := make([]string, 0, min(len(vs), maxListed)+1)
	for i, v := range vs {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(vs)-maxListed))
			break
		}
		parts = append(parts, v.String())
	}
	return fmt.Sprintf("Security level %s forbids: %s", l, strings.Join(parts, "; "))
}

// isRoot: no user (the image's, root unless it says otherwise), root, or uid 0 in any
// spelling (0, 00, +0).
func isRoot(user string) bool {
	user = strings.TrimSpace(user)
	if uid, err := strconv.ParseUint(strings.TrimPrefix(user, "+"), 10, 32); err == nil {
		return uid == 0
	}
	return user == "" || user == "root"
}

func listed(allowed []string) string {
	if len(allowed) == 0 {
		return " (none is allowed)"
	}
	return " (" + strings.Join(allowed, ", ") + ")"
}

func listedPorts(ports []uint32) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	return listed(s)
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
