package compose

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

func TestContainerKeys(t *testing.T) {
	cases := map[string]struct {
		yml   string
		check func(t *testing.T, c *swarm.ContainerSpec)
	}{
		"entrypoint becomes Command and command Args, in order": {
			yml: "entrypoint: [/bin/app, --quiet]\n    command: [serve, --port, \"80\"]",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "command", c.Command, []string{"/bin/app", "--quiet"})
				jsonEq(t, "args", c.Args, []string{"serve", "--port", "80"})
			},
		},
		"string command is split like a shell would": {
			yml: `command: serve --name "two words"`,
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "args", c.Args, []string{"serve", "--name", "two words"})
			},
		},
		"container labels stay on the container, with the stack label": {
			yml: "labels: {tier: front, com.example.x: y}",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "labels", c.Labels, map[string]string{"tier": "front", "com.example.x": "y", "com.docker.stack.namespace": "st"})
			},
		},
		"hostname, working_dir, user, stop_signal, isolation, oom_score_adj": {
			yml: "hostname: h1\n    working_dir: /srv\n    user: \"1000:1000\"\n    stop_signal: SIGINT\n    isolation: default\n    oom_score_adj: 100",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				if c.Hostname != "h1" || c.Dir != "/srv" || c.User != "1000:1000" || c.StopSignal != "SIGINT" || c.Isolation != "default" || c.OomScoreAdj != 100 {
					t.Errorf("got %+v", c)
				}
			},
		},
		"extra_hosts become sorted hosts-file lines": {
			yml: `extra_hosts: ["somehost:162.242.195.82", "otherhost=50.31.209.229", "v6host=::1"]`,
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "hosts", c.Hosts, []string{"162.242.195.82 somehost", "50.31.209.229 otherhost", "::1 v6host"})
			},
		},
		"dns, dns_search and dns_opt form the DNS config": {
			yml: "dns: [8.8.8.8, 1.1.1.1]\n    dns_search: example.com\n    dns_opt: [use-vc]",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "dns", c.DNSConfig, &swarm.DNSConfig{Nameservers: []string{"8.8.8.8", "1.1.1.1"}, Search: []string{"example.com"}, Options: []string{"use-vc"}})
			},
		},
		"no dns keys, no DNS config": {
			yml: "hostname: x",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				if c.DNSConfig != nil {
					t.Errorf("DNSConfig = %+v", c.DNSConfig)
				}
			},
		},
		"stop_grace_period, tty, stdin_open, read_only, init": {
			yml: "stop_grace_period: 1m30s\n    tty: true\n    stdin_open: true\n    read_only: true\n    init: true",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				if c.StopGracePeriod == nil || *c.StopGracePeriod != 90*time.Second || !c.TTY || !c.OpenStdin || !c.ReadOnly || c.Init == nil || !*c.Init {
					t.Errorf("got %+v", c)
				}
			},
		},
		"init false is kept, not dropped": {
			yml: "init: false",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				if c.Init == nil || *c.Init {
					t.Errorf("Init = %v", c.Init)
				}
			},
		},
		"sysctls in list or map form": {
			yml: "sysctls: [net.core.somaxconn=1024, net.ipv4.tcp_syncookies=0]",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "sysctls", c.Sysctls, map[string]string{"net.core.somaxconn": "1024", "net.ipv4.tcp_syncookies": "0"})
			},
		},
		"capabilities are normalised, add wins over drop": {
			yml: "cap_add: [net_admin, CAP_SYS_TIME]\n    cap_drop: [net_admin, mknod]",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "add", c.CapabilityAdd, []string{"CAP_NET_ADMIN", "CAP_SYS_TIME"})
				jsonEq(t, "drop", c.CapabilityDrop, []string{"CAP_MKNOD"})
			},
		},
		"cap_drop ALL absorbs the rest": {
			yml: "cap_drop: [ALL, chown]",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "drop", c.CapabilityDrop, []string{"ALL"})
			},
		},
		"ulimits single value and soft/hard, sorted by name": {
			yml: "ulimits:\n      nproc: 65535\n      nofile: {soft: 20000, hard: 40000}",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				jsonEq(t, "ulimits", c.Ulimits, []*container.Ulimit{{Name: "nofile", Soft: 20000, Hard: 40000}, {Name: "nproc", Soft: 65535, Hard: 65535}})
			},
		},
		"image label goes on the service, not the container": {
			yml: "hostname: x",
			check: func(t *testing.T, c *swarm.ContainerSpec) {
				if _, ok := c.Labels["com.docker.stack.image"]; ok {
					t.Errorf("container labels %v", c.Labels)
				}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.check(t, containerOf(t, "services:\n  web:\n    image: nginx:1\n    "+tc.yml+"\n"))
		})
	}
}

func TestLogging(t *testing.T) {
	task := serviceOf(t, stackOf(t, "services:\n  web:\n    image: nginx\n    logging:\n      driver: syslog\n      options: {syslog-address: \"tcp://192.168.0.42:123\"}\n"), "web").TaskTemplate
	jsonEq(t, "log driver", task.LogDriver, &swarm.Driver{Name: "syslog", Options: map[string]string{"syslog-address": "tcp://192.168.0.42:123"}})
}

func TestEnvironment(t *testing.T) {
	cases := map[string]struct {
		yml  string
		opts []func(*Options)
		want []string
	}{
		"list form, sorted": {
			yml:  "environment: [B=2, A=1]",
			want: []string{"A=1", "B=2"},
		},
		"map form, values kept verbatim": {
			yml:  "environment: {URL: \"http://x/?a=b\", EMPTY: \"\"}",
			want: []string{"EMPTY=", "URL=http://x/?a=b"},
		},
		"entries without value take the variable, or stay bare": {
			yml:  "environment: [FROMVAR, UNSET]\n    labels: {x: y}",
			opts: []func(*Options){withVars("FROMVAR", "v")},
			want: []string{"FROMVAR=v", "UNSET"},
		},
		"map entries without value take the variable too": {
			yml:  "environment: {FROMVAR: null}",
			opts: []func(*Options){withVars("FROMVAR", "v")},
			want: []string{"FROMVAR=v"},
		},
		"env_file is read through ReadFile and environment overrides it": {
			yml:  "env_file: [a.env, b.env]\n    environment: [C=env]",
			opts: []func(*Options){withFiles(map[string]string{"a.env": "# comment\nA=1\nC=a\n\nB=a\n", "b.env": "B=b\r\n  QUOTED=\"kept\"\n"})},
			want: []string{"A=1", "B=b", "C=env", "QUOTED=\"kept\""},
		},
		"env_file bare names take the variable": {
			yml:  "env_file: a.env",
			opts: []func(*Options){withFiles(map[string]string{"a.env": "X\nMISSING\n"}), func(o *Options) { o.Variables = map[string]string{"X": "1"} }},
			want: []string{"X=1"},
		},
		"optional env_file may be missing": {
			yml:  "env_file: [{path: nope.env, required: false}]\n    environment: [A=1]",
			want: []string{"A=1"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := containerOf(t, "services:\n  web:\n    image: nginx\n    "+tc.yml+"\n", tc.opts...)
			jsonEq(t, "env", c.Env, tc.want)
		})
	}
	t.Run("required env_file without ReadFile is an error naming file and line", func(t *testing.T) {
		_, err := renderYAML("services:\n  web:\n    image: nginx\n    env_file: app.env\n")
		wantError(t, err, "docker-compose.yml", 4, "app.env", "web")
	})
	t.Run("OS environment never leaks in", func(t *testing.T) {
		t.Setenv("LEAKY", "from-os")
		c := containerOf(t, "services:\n  web:\n    image: nginx:${LEAKY:-default}\n    environment: [LEAKY]\n")
		if c.Image != "nginx:default" || c.Env[0] != "LEAKY" {
			t.Errorf("image %q env %v", c.Image, c.Env)
		}
	})
}

func TestHealthcheck(t *testing.T) {
	cases := map[string]struct {
		yml  string
		want *container.HealthConfig
	}{
		"exec form with every duration": {
			yml:  "test: [CMD, /app, health]\n      interval: 2s\n      timeout: 3s\n      retries: 2\n      start_period: 5s\n      start_interval: 1s",
			want: &container.HealthConfig{Test: []string{"CMD", "/app", "health"}, Interval: 2 * time.Second, Timeout: 3 * time.Second, Retries: 2, StartPeriod: 5 * time.Second, StartInterval: time.Second},
		},
		"string test is the shell form": {
			yml:  "test: curl -f http://localhost/",
			want: &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost/"}},
		},
		"timings only keep the image's test": {
			yml:  "interval: 20s\n      retries: 3",
			want: &container.HealthConfig{Interval: 20 * time.Second, Retries: 3},
		},
		"disable becomes NONE": {
			yml:  "disable: true",
			want: &container.HealthConfig{Test: []string{"NONE"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := containerOf(t, "services:\n  web:\n    image: nginx\n    healthcheck:\n      "+tc.yml+"\n")
			jsonEq(t, "healthcheck", c.Healthcheck, tc.want)
		})
	}
	t.Run("disable with a test is an error", func(t *testing.T) {
		_, err := renderYAML("services:\n  web:\n    image: nginx\n    healthcheck:\n      disable: true\n      test: [CMD, x]\n")
		wantError(t, err, "docker-compose.yml", 5, "disable")
	})
}

func TestDeployMode(t *testing.T) {
	cases := map[string]struct {
		yml  string
		want swarm.ServiceMode
	}{
		"replicated by default, one replica made explicit": {yml: "labels: {}", want: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(1)}}},
		"replicas":                {yml: "replicas: 6", want: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(6)}}},
		"zero replicas is kept":   {yml: "replicas: 0", want: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(0)}}},
		"global":                  {yml: "mode: global", want: swarm.ServiceMode{Global: &swarm.GlobalService{}}},
		"replicated-job":          {yml: "mode: replicated-job\n      replicas: 3", want: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: u64(3), TotalCompletions: u64(3)}}},
		"replicated-job defaults": {yml: "mode: replicated-job", want: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}},
		"global-job":              {yml: "mode: global-job", want: swarm.ServiceMode{GlobalJob: &swarm.GlobalJob{}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := serviceOf(t, stackOf(t, "services:\n  web:\n    image: nginx\n    deploy:\n      "+tc.yml+"\n"), "web")
			jsonEq(t, "mode", s.Mode, tc.want)
		})
	}
	errs := map[string]struct {
		yml  string
		line int
	}{
		"global with replicas is refused": {"mode: global\n      replicas: 2", 6},
		"unknown mode is refused":         {"mode: daemonset", 5},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			_, err := renderYAML("services:\n  web:\n    image: nginx\n    deploy:\n      " + tc.yml + "\n")
			wantError(t, err, "docker-compose.yml", tc.line, "web")
		})
	}
}

func TestResources(t *testing.T) {
	cases := map[string]struct {
		yml  string
		want *swarm.ResourceRequirements
	}{
		"none gives an empty, non-nil requirement like stack deploy": {yml: "labels: {}", want: &swarm.ResourceRequirements{}},
		"limits: cpus exactly, memory with unit, pids": {
			yml:  "resources:\n        limits: {cpus: \"0.1\", memory: 75M, pids: 100}",
			want: &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 100000000, MemoryBytes: 75 << 20, Pids: 100}},
		},
		"numeric cpus": {
			yml:  "resources:\n        limits: {cpus: 1.5}",
			want: &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 1500000000}},
		},
		"reservations with generic resources": {
			yml: "resources:\n        reservations:\n          cpus: \"0.25\"\n          memory: 1g\n          generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}]",
			want: &swarm.ResourceRequirements{Reservations: &swarm.Resources{NanoCPUs: 250000000, MemoryBytes: 1 << 30,
				GenericResources: []swarm.GenericResource{{DiscreteResourceSpec: &swarm.DiscreteGenericResource{Kind: "gpu", Value: 2}}}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := serviceOf(t, stackOf(t, "services:\n  web:\n    image: nginx\n    deploy:\n      "+tc.yml+"\n"), "web")
			jsonEq(t, "resources", s.TaskTemplate.Resources, tc.want)
		})
	}
}

func TestRestartPolicy(t *testing.T) {
	d5, d2m := 5*time.Second, 2*time.Minute
	cases := map[string]struct {
		yml  string
		want *swarm.RestartPolicy
	}{
		"absent leaves Swarm's default": {yml: "labels: {}", want: nil},
		"deploy.restart_policy": {
			yml:  "deploy:\n      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}",
			want: &swarm.RestartPolicy{Condition: "on-failure", Delay: &d5, MaxAttempts: u64(3), Window: &d2m},
		},
		"legacy restart always means any":          {yml: "restart: always", want: &swarm.RestartPolicy{Condition: "any"}},
		"legacy restart unless-stopped means any":  {yml: "restart: unless-stopped", want: &swarm.RestartPolicy{Condition: "any"}},
		"legacy restart on-failure with a count":   {yml: "restart: on-failure:4", want: &swarm.RestartPolicy{Condition: "on-failure", MaxAttempts: u64(4)}},
		"legacy restart no leaves Swarm's default": {yml: "restart: \"no\"", want: nil},
		"deploy.restart_policy wins over restart": {
			yml:  "restart: always\n    deploy:\n      restart_policy: {condition: none}",
			want: &swarm.RestartPolicy{Condition: "none"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := serviceOf(t, stackOf(t, "services:\n  web:\n    image: nginx\n    "+tc.yml+"\n"), "web")
			jsonEq(t, "restart policy", s.TaskTemplate.RestartPolicy, tc.want)
		})
	}
}

func TestUpdateAndRollbackConfig(t *testing.T) {
	cases := map[string]struct {
		yml  string
		want *swarm.UpdateConfig
	}{
		"absent leaves Swarm's default": {yml: "labels: {}", want: nil},
		"parallelism defaults to 1 when the section is given": {
			yml:  "order: start-first",
			want: &swarm.UpdateConfig{Parallelism: 1, Order: "start-first"},
		},
		"every field": {
			yml:  "parallelism: 3\n        delay: 10s\n        failure_action: rollback\n        monitor: 60s\n        max_failure_ratio: 0.3\n        order: start-first",
			want: &swarm.UpdateConfig{Parallelism: 3, Delay: 10 * time.Second, FailureAction: "rollback", Monitor: time.Minute, MaxFailureRatio: 0.3, Order: "start-first"},
		},
		"parallelism 0 means all at once and is kept": {
			yml:  "parallelism: 0",
			want: &swarm.UpdateConfig{Parallelism: 0},
		},
	}
	for name, tc := range cases {
		for _, section := range []string{"update_config", "rollback_config"} {
			t.Run(section+"/"+name, func(t *testing.T) {
				yml := "services:\n  web:\n    image: nginx\n    deploy:\n      " + section + ":\n        " + tc.yml + "\n"
				if tc.want == nil {
					yml = "services:\n  web:\n    image: nginx\n"
				}
				s := serviceOf(t, stackOf(t, yml), "web")
				got := s.UpdateConfig
				if section == "rollback_config" {
					got = s.RollbackConfig
				}
				jsonEq(t, section, got, tc.want)
			})
		}
	}
	for name, yml := range map[string]string{
		"unknown failure_action is refused": "failure_action: retry",
		"unknown order is refused":          "order: random",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := renderYAML("services:\n  web:\n    image: nginx\n    deploy:\n      update_config:\n        " + yml + "\n")
			wantError(t, err, "docker-compose.yml", 6, "web")
		})
	}
}

func TestPlacement(t *testing.T) {
	s := serviceOf(t, stackOf(t, `services:
  web:
    image: nginx
    deploy:
      placement:
        constraints: [node.role == worker, node.labels.zone == a]
        preferences: [spread: node.labels.zone]
        max_replicas_per_node: 2
`), "web")
	jsonEq(t, "placement", s.TaskTemplate.Placement, &swarm.Placement{
		Constraints: []string{"node.role == worker", "node.labels.zone == a"}, // order as written
		Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.zone"}}},
		MaxReplicas: 2,
	})
}

func TestServiceLabels(t *testing.T) {
	s := serviceOf(t, stackOf(t, "services:\n  web:\n    image: nginx:1.27\n    labels: {c: container}\n    deploy:\n      labels: {s: service}\n"), "web")
	jsonEq(t, "service labels", s.Labels, map[string]string{"s": "service", "com.docker.stack.namespace": "st", "com.docker.stack.image": "nginx:1.27"})
	if s.Name != "st_web" {
		t.Errorf("name %q", s.Name)
	}
}

func TestPorts(t *testing.T) {
	cases := map[string]struct {
		yml      string
		want     []swarm.PortConfig
		mode     swarm.ResolutionMode
		warnings []string
	}{
		"short syntax publishes through the ingress mesh": {
			yml:  `ports: ["8080:80", "53:53/udp"]`,
			want: []swarm.PortConfig{{Protocol: "udp", TargetPort: 53, PublishedPort: 53, PublishMode: "ingress"}, {Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress"}},
		},
		"target only lets Swarm pick the published port": {
			yml:  `ports: ["80"]`,
			want: []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishMode: "ingress"}},
		},
		"long syntax host mode": {
			yml:  "ports:\n      - {target: 80, published: 80, mode: host}",
			want: []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 80, PublishMode: "host"}},
		},
		"sorted by published port whatever the written order": {
			yml:  `ports: ["9000:90", "81:81", "443:443"]`,
			want: []swarm.PortConfig{{Protocol: "tcp", TargetPort: 81, PublishedPort: 81, PublishMode: "ingress"}, {Protocol: "tcp", TargetPort: 443, PublishedPort: 443, PublishMode: "ingress"}, {Protocol: "tcp", TargetPort: 90, PublishedPort: 9000, PublishMode: "ingress"}},
		},
		"host ip is ignored with a warning": {
			yml:      `ports: ["127.0.0.1:80:80"]`,
			want:     []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 80, PublishMode: "ingress"}},
			warnings: []string{`service "web": port host_ip "127.0.0.1" is ignored by Swarm`},
		},
		"endpoint_mode dnsrr": {
			yml:  "deploy: {endpoint_mode: dnsrr}",
			mode: swarm.ResolutionModeDNSRR,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := stackOf(t, "services:\n  web:\n    image: nginx\n    "+tc.yml+"\n")
			ep := serviceOf(t, st, "web").EndpointSpec
			jsonEq(t, "endpoint", ep, &swarm.EndpointSpec{Mode: tc.mode, Ports: tc.want})
			jsonEq(t, "warnings", st.Warnings, tc.warnings)
		})
	}
	t.Run("published range is refused", func(t *testing.T) {
		_, err := renderYAML("services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        published: 8000-8010\n")
		wantError(t, err, "docker-compose.yml", 5, "8000-8010")
	})
	// Swarm refuses both (found by the differential test): Render must, with the file.
	t.Run("a published port mapped twice is refused", func(t *testing.T) {
		_, err := renderYAML("services:\n  web:\n    image: nginx\n    ports: [\"8080:80\", {target: 81, published: 8080, mode: host}, \"8080:82/udp\"]\n")
		wantError(t, err, "docker-compose.yml", 4, "published port 8080/tcp is mapped twice (to target ports 80 and 81)")
	})
	t.Run("the same published port for tcp and udp is fine", func(t *testing.T) {
		stackOf(t, "services:\n  web:\n    image: nginx\n    ports: [\"53:53/udp\", \"53:53\", \"80\", \"81\"]\n")
	})
	t.Run("a later file adds ports, so it cannot remap a published port", func(t *testing.T) {
		_, err := Render([]File{
			{Name: "core.yml", Content: []byte("services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n")},
			{Name: "prod.yml", Content: []byte("services:\n  web:\n    ports:\n      - \"8080:8080\"\n")},
		}, Options{StackName: "st"})
		wantError(t, err, "prod.yml", 3, "published port 8080/tcp is mapped twice (to target ports 80 and 8080)", "a later file adds ports")
	})
	t.Run("ingress ports with endpoint_mode dnsrr are refused", func(t *testing.T) {
		_, err := renderYAML("services:\n  web:\n    image: nginx\n    deploy: {endpoint_mode: dnsrr}\n    ports:\n      - {target: 80, published: 80, mode: host}\n      - \"81\"\n")
		wantError(t, err, "docker-compose.yml", 5, "port 81 is published through the ingress routing mesh", "mode: host")
	})
}

func TestVolumes(t *testing.T) {
	yml := `services:
  web:
    image: nginx
    volumes:
      - data:/var/lib/data
      - /etc/ssl:/etc/ssl:ro
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 64m}
      - /anonymous
      - ext:/ext
      - type: bind
        source: /srv
        target: /srv
        bind: {propagation: rshared}
      - named:/named:nocopy
volumes:
  data:
    driver: local
    driver_opts: {type: nfs, o: addr=10.0.0.1}
    labels: {backup: daily}
  ext:
    external: true
  named:
    name: explicit-name
`
	c := containerOf(t, yml)
	want := []mount.Mount{
		{Type: "volume", Target: "/anonymous"},
		{Type: "bind", Source: "/etc/ssl", Target: "/etc/ssl", ReadOnly: true},
		{Type: "volume", Source: "ext", Target: "/ext", VolumeOptions: &mount.VolumeOptions{}},
		{Type: "volume", Source: "explicit-name", Target: "/named", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"com.docker.stack.namespace": "st"}}},
		{Type: "bind", Source: "/srv", Target: "/srv", BindOptions: &mount.BindOptions{Propagation: "rshared"}},
		{Type: "tmpfs", Target: "/tmp", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20}},
		{Type: "volume", Source: "st_data", Target: "/var/lib/data", VolumeOptions: &mount.VolumeOptions{
			Labels:       map[string]string{"backup": "daily", "com.docker.stack.namespace": "st"},
			DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "nfs", "o": "addr=10.0.0.1"}},
		}},
	}
	jsonEq(t, "mounts sorted by target", c.Mounts, want)

	errs := map[string]struct {
		yml  string
		line int
		frag string
	}{
		"undefined named volume": {yml: "volumes: [nope:/data]", line: 4, frag: `undefined volume "nope"`},
		"relative bind source":   {yml: "volumes: [./data:/data]", line: 4, frag: "absolute"},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			_, err := renderYAML("services:\n  web:\n    image: nginx\n    " + tc.yml + "\n")
			wantError(t, err, "docker-compose.yml", tc.line, tc.frag)
		})
	}
}

func TestIgnoredAndForbiddenKeys(t *testing.T) {
	st := stackOf(t, `services:
  web:
    image: nginx
    build: .
    container_name: web1
    depends_on: [db]
    privileged: true
    devices: ["/dev/ttyUSB0:/dev/ttyUSB0"]
    network_mode: host
    links: [db]
    cgroup_parent: m
    profiles: [debug]
    x-custom: ignored silently
    deploy:
      resources:
        reservations:
          devices: [{capabilities: [gpu]}]
  db:
    image: postgres
`)
	want := []string{}
	for _, k := range []string{"build", "cgroup_parent", "container_name", "depends_on", "deploy.resources.reservations.devices", "devices", "links", "network_mode", "privileged", "profiles"} {
		want = append(want, `service "web": key "`+k+`" is ignored by Swarm`)
	}
	jsonEq(t, "warnings", st.Warnings, want)
	if len(st.Services) != 2 {
		t.Errorf("a service with profiles is still deployed: %d services", len(st.Services))
	}

	for _, key := range []string{"extends: {service: db}", "volumes_from: [db]", "mem_limit: 1g", "cpu_shares: 2"} {
		t.Run("forbidden "+strings.Fields(key)[0], func(t *testing.T) {
			_, err := renderYAML("services:\n  db:\n    image: postgres\n  web:\n    image: nginx\n    " + key + "\n")
			wantError(t, err, "docker-compose.yml", 6, strings.TrimSuffix(strings.Fields(key)[0], ":"), "not supported")
		})
	}
}
