package stack

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
	swarmtypes "github.com/docker/docker/api/types/swarm"

	"github.com/swarmops/swarm-operator/internal/testkit"
)

func TestAlignWithRunning(t *testing.T) {
	ports := func(ps ...swarmtypes.PortConfig) *swarmtypes.EndpointSpec { return &swarmtypes.EndpointSpec{Ports: ps} }
	p80 := swarmtypes.PortConfig{TargetPort: 80, PublishedPort: 18080, Protocol: "tcp", PublishMode: "ingress"}
	p443 := swarmtypes.PortConfig{TargetPort: 443, PublishedPort: 18443, Protocol: "tcp", PublishMode: "ingress"}
	p53 := swarmtypes.PortConfig{TargetPort: 53, PublishedPort: 18053, Protocol: "udp", PublishMode: "ingress"}
	cases := map[string]struct {
		want, running func(*swarmtypes.ServiceSpec)
		opts          alignOptions
		// check returns what differs from expectation, "" when right.
		check func(got swarmtypes.ServiceSpec) string
	}{
		"ports keep Swarm's order": {
			want:    func(s *swarmtypes.ServiceSpec) { s.EndpointSpec = ports(p443, p80) },
			running: func(s *swarmtypes.ServiceSpec) { s.EndpointSpec = ports(p80, p443) },
			check: func(g swarmtypes.ServiceSpec) string {
				return expect(g.EndpointSpec.Ports[0].TargetPort == 80 && g.EndpointSpec.Ports[1].TargetPort == 443, "ports %+v", g.EndpointSpec.Ports)
			},
		},
		"a port left at Swarm's defaults matches the spelled-out one": {
			want: func(s *swarmtypes.ServiceSpec) { s.EndpointSpec = ports(p443, p80) },
			running: func(s *swarmtypes.ServiceSpec) {
				s.EndpointSpec = ports(swarmtypes.PortConfig{TargetPort: 80, PublishedPort: 18080}, p443)
			},
			check: func(g swarmtypes.ServiceSpec) string {
				return expect(g.EndpointSpec.Ports[0].Protocol == "" && g.EndpointSpec.Ports[1].TargetPort == 443, "ports %+v", g.EndpointSpec.Ports)
			},
		},
		"a new port comes after the shared ones; a removed one is gone": {
			want:    func(s *swarmtypes.ServiceSpec) { s.EndpointSpec = ports(p53, p443) },
			running: func(s *swarmtypes.ServiceSpec) { s.EndpointSpec = ports(p80, p443) },
			check: func(g swarmtypes.ServiceSpec) string {
				p := g.EndpointSpec.Ports
				return expect(len(p) == 2 && p[0].TargetPort == 443 && p[1].TargetPort == 53, "ports %+v", p)
			},
		},
		"redis is redis:latest": {
			want:    func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "redis" },
			running: func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "redis:latest" },
			check:   imageIs("redis:latest"),
		},
		"docker.io/library/redis is redis": {
			want:    func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "docker.io/library/redis:latest" },
			running: func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "redis" },
			check:   imageIs("redis"),
		},
		"another tag is a change": {
			want:    func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "redis:7" },
			running: func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "redis:latest" },
			check:   imageIs("redis:7"),
		},
		"a pinned digest stays while no registry is asked": {
			want: func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "redis:7" },
			running: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Image = "redis:7@sha256:" + strings.Repeat("a", 64)
			},
			opts:  alignOptions{keepDigest: true},
			check: imageIs("redis:7@sha256:" + strings.Repeat("a", 64)),
		},
		"a pinned digest goes when the registry is asked (resolveImage)": {
			want: func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "redis:7" },
			running: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Image = "redis:7@sha256:" + strings.Repeat("a", 64)
			},
			check: imageIs("redis:7"),
		},
		"mounts keep Swarm's order and its trailing slash": {
			want: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{
					{Type: mount.TypeBind, Source: "/etc/ssl", Target: "/etc/configs", ReadOnly: true},
					{Type: mount.TypeVolume, Source: "s_data", Target: "/data", VolumeOptions: &mount.VolumeOptions{}},
				}
			},
			running: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{
					{Type: mount.TypeVolume, Source: "s_data", Target: "/data"},
					{Type: mount.TypeBind, Source: "/etc/ssl/", Target: "/etc/configs/", ReadOnly: true},
				}
			},
			check: func(g swarmtypes.ServiceSpec) string {
				m := g.TaskTemplate.ContainerSpec.Mounts
				return expect(m[0].Target == "/data" && m[1].Target == "/etc/configs/" && m[1].Source == "/etc/ssl/", "mounts %+v", m)
			},
		},
		"a read-only flag is a change": {
			want: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/etc", Target: "/c", ReadOnly: true}}
			},
			running: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/etc", Target: "/c/"}}
			},
			check: func(g swarmtypes.ServiceSpec) string {
				m := g.TaskTemplate.ContainerSpec.Mounts
				return expect(m[0].ReadOnly && m[0].Target == "/c", "mounts %+v", m)
			},
		},
		"config and secret targets as Swarm keeps them": {
			want: func(s *swarmtypes.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				cs.Configs = []*swarmtypes.ConfigReference{{ConfigName: "s_c", ConfigID: "c1", File: &swarmtypes.ConfigReferenceFileTarget{Name: "/config1", UID: "0", GID: "0", Mode: 0o444}}}
				cs.Secrets = []*swarmtypes.SecretReference{{SecretName: "ext", SecretID: "s1", File: &swarmtypes.SecretReferenceFileTarget{Name: "/run/secrets/pw", UID: "0", GID: "0", Mode: 0o444}}}
			},
			running: func(s *swarmtypes.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				cs.Configs = []*swarmtypes.ConfigReference{{ConfigName: "s_c", ConfigID: "c1", File: &swarmtypes.ConfigReferenceFileTarget{Name: "config1", UID: "0", GID: "0", Mode: 0o444}}}
				cs.Secrets = []*swarmtypes.SecretReference{{SecretName: "ext", SecretID: "s1", File: &swarmtypes.SecretReferenceFileTarget{Name: "pw", UID: "0", GID: "0", Mode: 0o444}}}
			},
			check: func(g swarmtypes.ServiceSpec) string {
				cs := g.TaskTemplate.ContainerSpec
				return expect(cs.Configs[0].File.Name == "config1" && cs.Secrets[0].File.Name == "pw", "config %+v secret %+v", cs.Configs[0].File, cs.Secrets[0].File)
			},
		},
		"another config mode is a change": {
			want: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Configs = []*swarmtypes.ConfigReference{{ConfigName: "s_c", File: &swarmtypes.ConfigReferenceFileTarget{Name: "/c", Mode: 0o400}}}
			},
			running: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.Configs = []*swarmtypes.ConfigReference{{ConfigName: "s_c", File: &swarmtypes.ConfigReferenceFileTarget{Name: "c", Mode: 0o444}}}
			},
			check: func(g swarmtypes.ServiceSpec) string {
				f := g.TaskTemplate.ContainerSpec.Configs[0].File
				return expect(f.Name == "/c" && f.Mode == 0o400, "config %+v", f)
			},
		},
		"environment, hosts, capabilities and constraints keep Swarm's order": {
			want: func(s *swarmtypes.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				cs.Env, cs.Hosts, cs.CapabilityAdd = []string{"A=1", "B=2"}, []string{"10.0.0.1 a", "10.0.0.2 b"}, []string{"CAP_CHOWN", "CAP_NET_ADMIN"}
				s.TaskTemplate.Placement = &swarmtypes.Placement{Constraints: []string{"node.labels.a==1", "node.role == manager"}}
			},
			running: func(s *swarmtypes.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				cs.Env, cs.Hosts, cs.CapabilityAdd = []string{"B=2", "A=1"}, []string{"10.0.0.2 b", "10.0.0.1 a"}, []string{"CAP_NET_ADMIN", "CAP_CHOWN"}
				s.TaskTemplate.Placement = &swarmtypes.Placement{Constraints: []string{"node.role==manager", "node.labels.a == 1"}}
			},
			check: func(g swarmtypes.ServiceSpec) string {
				cs := g.TaskTemplate.ContainerSpec
				return expect(cs.Env[0] == "B=2" && cs.Hosts[0] == "10.0.0.2 b" && cs.CapabilityAdd[0] == "CAP_NET_ADMIN" &&
					g.TaskTemplate.Placement.Constraints[0] == "node.role==manager" && g.TaskTemplate.Placement.Constraints[1] == "node.labels.a == 1",
					"env %v hosts %v caps %v constraints %v", cs.Env, cs.Hosts, cs.CapabilityAdd, g.TaskTemplate.Placement.Constraints)
			},
		},
		"a changed variable is a change": {
			want:    func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Env = []string{"A=1", "B=3"} },
			running: func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Env = []string{"B=2", "A=1"} },
			check: func(g swarmtypes.ServiceSpec) string {
				return expect(slices.Equal(g.TaskTemplate.ContainerSpec.Env, []string{"A=1", "B=3"}), "env %v", g.TaskTemplate.ContainerSpec.Env)
			},
		},
		"nameservers are tried in order: never reordered": {
			want: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.DNSConfig = &swarmtypes.DNSConfig{Nameservers: []string{"10.0.0.1", "10.0.0.2"}}
			},
			running: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.ContainerSpec.DNSConfig = &swarmtypes.DNSConfig{Nameservers: []string{"10.0.0.2", "10.0.0.1"}}
			},
			check: func(g swarmtypes.ServiceSpec) string {
				n := g.TaskTemplate.ContainerSpec.DNSConfig.Nameservers
				return expect(n[0] == "10.0.0.1", "nameservers %v", n)
			},
		},
		"networks by ID in Swarm, by name in the spec": {
			want: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.Networks = []swarmtypes.NetworkAttachmentConfig{{Target: "s_back"}, {Target: "s_front", Aliases: []string{"x", "y"}}}
			},
			running: func(s *swarmtypes.ServiceSpec) {
				s.TaskTemplate.Networks = []swarmtypes.NetworkAttachmentConfig{{Target: "id-front", Aliases: []string{"y", "x"}}, {Target: "id-back"}}
			},
			opts: alignOptions{networkIDs: map[string]string{"s_back": "id-back", "s_front": "id-front"}},
			check: func(g swarmtypes.ServiceSpec) string {
				n := g.TaskTemplate.Networks
				return expect(n[0].Target == "s_front" && n[0].Aliases[0] == "y" && n[1].Target == "s_back", "networks %+v", n)
			},
		},
		"labels are the wanted ones": {
			running: func(s *swarmtypes.ServiceSpec) { s.Labels = map[string]string{"running": "1"} },
			check: func(g swarmtypes.ServiceSpec) string {
				return expect(g.Labels["want"] == "1" && g.Labels["running"] == "", "labels %v", g.Labels)
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want, running := plainSpec("numbers-api:v1"), plainSpec("numbers-api:v1")
			running.Labels = nil
			if tc.want != nil {
				tc.want(&want)
			}
			if tc.running != nil {
				tc.running(&running)
			}
			before := testkit.JSON(t, want)
			got := alignWithRunning(want, running, tc.opts)
			if msg := tc.check(got); msg != "" {
				t.Error(msg)
			}
			if testkit.JSON(t, want) != before {
				t.Error("alignWithRunning changed its input")
			}
		})
	}
}

func plainSpec(image string) swarmtypes.ServiceSpec {
	return swarmtypes.ServiceSpec{
		Annotations:  swarmtypes.Annotations{Name: "s_a", Labels: map[string]string{"want": "1"}},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: image}},
	}
}

func expect(ok bool, format string, args ...any) string {
	if ok {
		return ""
	}
	b, _ := json.Marshal(args)
	return format + " " + string(b)
}

func imageIs(image string) func(swarmtypes.ServiceSpec) string {
	return func(g swarmtypes.ServiceSpec) string {
		return expect(g.TaskTemplate.ContainerSpec.Image == image, "image %s, want %s", g.TaskTemplate.ContainerSpec.Image, image)
	}
}

// TestImagesNamingTheSameDigestAreEqual: a tag, the tag with its digest, and the tag as
// Swarm resolved it are one image when they name the same digest (no false rollout,
// doco-cd #830), and another digest is a change.
func TestImagesNamingTheSameDigestAreEqual(t *testing.T) {
	a, b := "@sha256:"+strings.Repeat("a", 64), "@sha256:"+strings.Repeat("b", 64)
	cases := []struct {
		want, running string
		keepDigest    bool
		same          bool
	}{
		{"redis:7", "redis:7", false, true},
		{"redis:7" + a, "redis:7" + a, false, true},
		{"docker.io/library/redis:7" + a, "redis:7" + a, false, true},
		// Swarm resolved the tag when it was written; no registry is asked now.
		{"redis:7", "redis:7" + a, true, true},
		{"redis", "redis:latest" + a, true, true},
		// Asking the registry again (resolveImage) writes the tag for Swarm to resolve.
		{"redis:7", "redis:7" + a, false, false},
		// An image automation pinned the digest Swarm had resolved; the tag moved on.
		{"redis:7" + a, "redis:7" + a, true, true},
		{"redis:7.2" + a, "redis:7" + a, true, true},
		{"redis@" + a[1:], "redis:7" + a, true, true},
		// A pinned digest that changes rolls out.
		{"redis:7" + b, "redis:7" + a, true, false},
		{"redis:7" + b, "redis:7" + a, false, false},
		// Which digest a running tag is at is unknown without the registry: a pin writes.
		{"redis:7" + a, "redis:7", true, false},
		{"redis:8", "redis:7" + a, true, false},
		{"valkey:7" + a, "redis:7" + a, true, false},
	}
	for _, tc := range cases {
		if got := sameImage(tc.want, tc.running, tc.keepDigest); got != tc.same {
			t.Errorf("sameImage(%s, %s, keepDigest=%v) = %v, want %v", tc.want, tc.running, tc.keepDigest, got, tc.same)
		}
	}
}

// TestKeptDigestKeepsThePlatformsItsLookupSet: the lookup that pinned a digest also set
// the image's platforms as placement; keeping the digest without them would change the
// task template and restart every task.
func TestKeptDigestKeepsThePlatformsItsLookupSet(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("a", 64)
	platforms := []swarmtypes.Platform{{Architecture: "amd64", OS: "linux"}, {Architecture: "arm64", OS: "linux"}}
	want, running := plainSpec("numbers-api:v1"), plainSpec("numbers-api:v1"+digest)
	running.TaskTemplate.Placement = &swarmtypes.Placement{Platforms: platforms}
	got := alignWithRunning(want, running, alignOptions{keepDigest: true})
	if !reflect.DeepEqual(got.TaskTemplate, running.TaskTemplate) {
		t.Fatalf("task template %s, want the running one %s", testkit.JSON(t, got.TaskTemplate), testkit.JSON(t, running.TaskTemplate))
	}
	// The same digest pinned in Git: the same image, the same platforms.
	want = plainSpec("numbers-api:v1" + digest)
	got = alignWithRunning(want, running, alignOptions{keepDigest: true})
	if !reflect.DeepEqual(got.TaskTemplate, running.TaskTemplate) {
		t.Fatalf("pinned in Git: task template %s", testkit.JSON(t, got.TaskTemplate))
	}
	// A new tag is a new image: the platforms are the new lookup's business.
	want = plainSpec("numbers-api:v2")
	got = alignWithRunning(want, running, alignOptions{keepDigest: true})
	if got.TaskTemplate.ContainerSpec.Image != "numbers-api:v2" || got.TaskTemplate.Placement != nil {
		t.Fatalf("new tag: image %s, placement %+v", got.TaskTemplate.ContainerSpec.Image, got.TaskTemplate.Placement)
	}
}
