package security

import (
	"strings"
	"testing"

	"github.com/swarmops/swarm-operator/internal/compose"
)

// stack is a rendered stack and the files it came from.
type stack struct {
	st    *compose.Stack
	files []compose.File
}

func check(s stack, p Policy) []Violation { return Check(s.st, s.files, p) }

func render(t *testing.T, files ...string) stack {
	t.Helper()
	var fs []compose.File
	for i, f := range files {
		name := "compose.yaml"
		if i > 0 {
			name = "override.yaml"
		}
		fs = append(fs, compose.File{Name: name, Content: []byte(f)})
	}
	st, err := compose.Render(fs, compose.Options{StackName: "app"})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return stack{st, fs}
}

func messages(vs []Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// allowed is what the hostile cases run under: a platform that allows /srv/data and
// host port 80.
var allowed = Policy{AllowedHostPaths: []string{"/srv/data/"}, AllowedHostPorts: []uint32{80}}

func at(l Level) Policy { p := allowed; p.Level = l; return p }

// TestHostileComposeRefusedAtBaseline: each spelling that dodges a naive check is
// refused at baseline and restricted with a message naming file, line, service, field
// and level, and allowed at privileged.
func TestHostileComposeRefusedAtBaseline(t *testing.T) {
	cases := map[string]struct {
		svc  string // the service's keys after image
		top  string // top-level keys
		want string // the baseline message
	}{
		"root short syntax": {svc: "volumes: ['/:/host']",
			want: `compose.yaml:4: service "web": volumes[0]: bind mount of host path "/" exposes the Docker socket /var/run/docker.sock (forbidden at level baseline)`},
		"root long syntax with trailing slashes": {svc: "volumes: [{type: bind, source: ///, target: /host}]",
			want: `compose.yaml:4: service "web": volumes[0]: bind mount of host path "///" exposes the Docker socket /var/run/docker.sock (forbidden at level baseline)`},
		"docker socket": {svc: "volumes: ['/var/run/docker.sock:/var/run/docker.sock']",
			want: `compose.yaml:4: service "web": volumes[0]: bind mount of host path "/var/run/docker.sock" exposes the Docker socket /var/run/docker.sock (forbidden at level baseline)`},
		"docker socket through the run symlink": {svc: "volumes: [{type: bind, source: /run//docker.sock/, target: /s}]",
			want: `compose.yaml:4: service "web": volumes[0]: bind mount of host path "/run//docker.sock/" exposes the Docker socket /run/docker.sock (forbidden at level baseline)`},
		"docker socket inside an allowed path": {svc: "volumes: ['/srv/data/docker.sock:/s']",
			want: `compose.yaml:4: service "web": volumes[0]: bind mount of host path "/srv/data/docker.sock" is a Docker socket (forbidden at level baseline)`},
		"dot-dot out of an allowed path": {svc: "volumes: [{type: bind, source: /srv/data/../../etc, target: /e}]",
			want: `compose.yaml:4: service "web": volumes[0]: bind mount of host path "/srv/data/../../etc" is outside the allowed host paths (/srv/data/) (forbidden at level baseline)`},
		"prefix of an allowed path is not under it": {svc: "volumes: ['/srv/data2:/d']",
			want: `compose.yaml:4: service "web": volumes[0]: bind mount of host path "/srv/data2" is outside the allowed host paths (/srv/data/) (forbidden at level baseline)`},
		"local volume binding a host path": {svc: "volumes: ['etc:/e']",
			top:  "volumes: {etc: {driver_opts: {type: none, o: bind, device: /etc}}}",
			want: `compose.yaml:4: service "web": volumes[0]: volume "etc" binds host path "/etc" is outside the allowed host paths (/srv/data/) (forbidden at level baseline)`},
		"cap_add ALL": {svc: "cap_add: [ALL]",
			want: `compose.yaml:4: service "web": cap_add: capability "ALL" is not in the baseline list (CAP_AUDIT_WRITE, CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_MKNOD, CAP_NET_BIND_SERVICE, CAP_SETFCAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_CHROOT) (forbidden at level baseline)`},
		"cap_add lower case without CAP_": {svc: "cap_add: [sys_admin]",
			want: `service "web": cap_add: capability "sys_admin" is not in the baseline list`},
		"cap_add with CAP_": {svc: "cap_add: [CAP_NET_ADMIN]",
			want: `service "web": cap_add: capability "CAP_NET_ADMIN" is not in the baseline list`},
		"host network": {svc: "networks: [hostnet]", top: "networks: {hostnet: {external: true, name: host}}",
			want: `compose.yaml:4: service "web": networks: network "hostnet" is the host's network (forbidden at level baseline)`},
		"host network by its key": {svc: "networks: [host]", top: "networks: {host: {external: true}}",
			want: `service "web": networks: network "host" is the host's network (forbidden at level baseline)`},
		"network_mode host": {svc: "network_mode: host",
			want: `compose.yaml:4: service "web": network_mode: the host's namespace is forbidden (forbidden at level baseline)`},
		"pid host": {svc: "pid: host", want: `service "web": pid: the host's namespace is forbidden`},
		"devices": {svc: "devices: ['/dev/sda:/dev/sda']",
			want: `compose.yaml:4: service "web": devices: host devices are forbidden (forbidden at level baseline)`},
		"privileged": {svc: "privileged: true",
			want: `compose.yaml:4: service "web": privileged: a privileged container owns the node`},
		"unsafe sysctl": {svc: "sysctls: {kernel.core_pattern: '|/tmp/x'}",
			want: `compose.yaml:4: service "web": sysctls: sysctl "kernel.core_pattern" is not in the safe list`},
		"unsafe sysctl list form": {svc: "sysctls: ['net.core.somaxconn=1024']",
			want: `service "web": sysctls: sysctl "net.core.somaxconn" is not in the safe list`},
		"host port not allowed": {svc: "ports: [{target: 22, published: 2222, mode: host}]",
			want: `compose.yaml:4: service "web": ports[0]: host-mode published port 2222 is not in the allowed host ports (80) (forbidden at level baseline)`},
		"host port the node picks": {svc: "ports: [{target: 80, mode: host}]",
			want: `service "web": ports[0]: host-mode port 80: no published port: the node would pick one, which no allowed list covers`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			file := "services:\n  web:\n    image: nginx\n    " + tc.svc + "\n" + tc.top + "\n"
			st := render(t, file)
			if got := check(st, at(Privileged)); len(got) != 0 {
				t.Errorf("privileged refused: %v", messages(got))
			}
			got := messages(check(st, at(Baseline)))
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("baseline: got %q, want one containing %q", got, tc.want)
			}
			restricted := strings.Join(messages(check(st, at(Restricted))), "\n")
			if !strings.Contains(restricted, `service "web": `) || !strings.Contains(restricted, "(forbidden at level restricted)") {
				t.Errorf("restricted did not refuse: %q", restricted)
			}
		})
	}
}

// TestBaselineAllowsWhatItLists: allowed host paths and ports, baseline capabilities in
// any spelling, safe sysctls and the ingress routing mesh pass baseline.
func TestBaselineAllowsWhatItLists(t *testing.T) {
	st := render(t, `services:
  web:
    image: nginx
    volumes: ['/srv/data/www/:/www:ro', {type: bind, source: /srv/data, target: /d}, 'cache:/cache', {type: tmpfs, target: /tmp}]
    cap_add: [chown, CAP_NET_BIND_SERVICE, Kill]
    sysctls: {net.ipv4.tcp_syncookies: 1, kernel/shm_rmid_forced: 1}
    ports: ['8080:80', {target: 80, published: 80, mode: host}]
    networks: [front]
networks: {front: {}}
volumes: {cache: {}}
`)
	if got := check(st, at(Baseline)); len(got) != 0 {
		t.Fatalf("baseline refused: %q", messages(got))
	}
}

// TestRestrictedRules: restricted wants a non-root user, cap_drop ALL, NET_BIND_SERVICE
// at most, a read-only root and no bind mount, even under an allowed path.
func TestRestrictedRules(t *testing.T) {
	good := "    user: '1000:1000'\n    cap_drop: [all]\n    cap_add: [net_bind_service]\n    read_only: true\n"
	cases := map[string]struct {
		keys string
		want string
	}{
		"compliant":            {keys: good},
		"no user":              {keys: strings.Replace(good, "    user: '1000:1000'\n", "", 1), want: `compose.yaml:2: service "web": user: no user is set (the image's, root unless the image says otherwise); set a non-root user (forbidden at level restricted)`},
		"root by name":         {keys: strings.Replace(good, "'1000:1000'", "root:users", 1), want: `compose.yaml:4: service "web": user: user "root:users" is root; set a non-root user (forbidden at level restricted)`},
		"root by uid":          {keys: strings.Replace(good, "'1000:1000'", "'0'", 1), want: `service "web": user: user "0" is root`},
		"root by padded uid":   {keys: strings.Replace(good, "'1000:1000'", "'000:1000'", 1), want: `service "web": user: user "000:1000" is root`},
		"no cap_drop ALL":      {keys: strings.Replace(good, "[all]", "[NET_RAW]", 1), want: `compose.yaml:5: service "web": cap_drop: cap_drop must contain ALL (forbidden at level restricted)`},
		"baseline cap added":   {keys: strings.Replace(good, "[net_bind_service]", "[net_bind_service, chown]", 1), want: `compose.yaml:6: service "web": cap_add: capability "chown": only NET_BIND_SERVICE may be added (forbidden at level restricted)`},
		"writable root":        {keys: strings.Replace(good, "read_only: true", "read_only: false", 1), want: `compose.yaml:7: service "web": read_only: the root filesystem must be read-only (read_only: true) (forbidden at level restricted)`},
		"bind of allowed path": {keys: good + "    volumes: ['/srv/data:/d']\n", want: `compose.yaml:8: service "web": volumes[0]: bind mount of host path "/srv/data": no host path may be mounted (forbidden at level restricted)`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := render(t, "services:\n  web:\n    image: nginx\n"+tc.keys)
			if got := check(st, at(Privileged)); len(got) != 0 {
				t.Errorf("privileged refused: %q", messages(got))
			}
			if got := check(st, at(Baseline)); len(got) != 0 {
				t.Errorf("baseline refused: %q", messages(got))
			}
			got := messages(check(st, at(Restricted)))
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("restricted refused a compliant service: %q", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("got %q, want one containing %q", got, tc.want)
			}
		})
	}
}

// TestViolationNamesTheFileThatWritesIt: with several files the message names the one
// that brought the forbidden key.
func TestViolationNamesTheFileThatWritesIt(t *testing.T) {
	st := render(t, "services:\n  web:\n    image: nginx\n", "services:\n  web:\n    cap_add: [SYS_ADMIN]\n")
	got := messages(check(st, at(Baseline)))
	if len(got) != 1 || !strings.HasPrefix(got[0], `override.yaml:3: service "web": cap_add: capability "SYS_ADMIN"`) {
		t.Fatalf("got %q", got)
	}
}

func TestResolveTakesTheStrictest(t *testing.T) {
	cases := map[string]struct {
		labels  map[string]string
		def     Level
		cluster string
		want    Modes
	}{
		"nothing set":               {want: Modes{}},
		"operator default":          {def: Baseline, want: Modes{Enforce: Baseline}},
		"namespace tighter":         {labels: map[string]string{LabelEnforce: "restricted"}, def: Baseline, want: Modes{Enforce: Restricted}},
		"cluster cannot loosen":     {labels: map[string]string{LabelEnforce: "baseline"}, cluster: "privileged", want: Modes{Enforce: Baseline}},
		"cluster tightens":          {labels: map[string]string{LabelEnforce: "baseline"}, cluster: "restricted", want: Modes{Enforce: Restricted}},
		"warn and audit are labels": {labels: map[string]string{LabelWarn: "restricted", LabelAudit: "baseline"}, want: Modes{Warn: Restricted, Audit: Baseline}},
		"a typo is taken as strictest": {labels: map[string]string{LabelEnforce: "Privileged"}, want: Modes{Enforce: Restricted,
			Problems: []string{`namespace label swarm.swarmops.io/enforce: unknown security level "Privileged": use one of privileged, baseline, restricted; taken as restricted`}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Resolve(tc.labels, tc.def, tc.cluster)
			if got.Enforce != tc.want.Enforce || got.Warn != tc.want.Warn || got.Audit != tc.want.Audit || strings.Join(got.Problems, "|") != strings.Join(tc.want.Problems, "|") {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
