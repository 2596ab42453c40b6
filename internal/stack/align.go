package stack

// Writing over a service that exists, as docker stack deploy (or an older operator) left
// it. Swarm replaces every task of a service when its task template or endpoint differs
// by a single byte: a list in another order, or the same path spelled another way. So the
// spec written keeps the running spec's order and spelling wherever they mean the same
// thing, and only a real change restarts tasks. The spec-hash label stays the rendered
// spec's hash, so the next pass sees no change.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/mount"
	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// alignOptions say what may be taken from the running spec besides order and spelling.
type alignOptions struct {
	// keepDigest keeps a digest the running image is pinned to when the wanted image
	// names the same repository and tag without one (docker stack deploy pins digests by
	// default; the operator asks no registry unless resolveImage says so).
	keepDigest bool
	// networkIDs maps network names to IDs: Swarm stores attachments by ID, the
	// operator writes names.
	networkIDs map[string]string
}

// alignWithRunning returns want with every list in running's order where the two hold
// the same entries, and with running's spelling of values that mean the same to Swarm
// (an image without :latest, a path with a trailing slash, a relative secret or config
// target). Entries only want has come after the shared ones; labels are never touched.
func alignWithRunning(want, running swarmtypes.ServiceSpec, opts alignOptions) swarmtypes.ServiceSpec {
	out := CloneSpec(want)
	if ws, rs := out.TaskTemplate.ContainerSpec, running.TaskTemplate.ContainerSpec; ws != nil && rs != nil {
		if sameImage(ws.Image, rs.Image, opts.keepDigest) {
			if opts.keepDigest && pinned(rs.Image) {
				// The registry lookup that pinned the digest set the image's platforms as
				// placement too; writing them away would restart every task. (A write that
				// asks the registry gets them from its own lookup.)
				keepPlatforms(&out.TaskTemplate, running.TaskTemplate)
			}
			ws.Image = rs.Image
		}
		if ws.Dir != rs.Dir && ws.Dir != "" && rs.Dir != "" && path.Clean(ws.Dir) == path.Clean(rs.Dir) {
			ws.Dir = rs.Dir
		}
		ws.Env = alignList(ws.Env, rs.Env, func(e string) string { return e })
		ws.Hosts = alignList(ws.Hosts, rs.Hosts, func(h string) string { return h })
		ws.Mounts = alignList(ws.Mounts, rs.Mounts, mountKey)
		ws.Secrets = alignList(ws.Secrets, rs.Secrets, secretKey)
		ws.Configs = alignList(ws.Configs, rs.Configs, configKey)
		ws.CapabilityAdd = alignList(ws.CapabilityAdd, rs.CapabilityAdd, strings.ToUpper)
		ws.CapabilityDrop = alignList(ws.CapabilityDrop, rs.CapabilityDrop, strings.ToUpper)
		ws.Ulimits = alignList(ws.Ulimits, rs.Ulimits, jsonKey)
		if wd, rd := ws.DNSConfig, rs.DNSConfig; wd != nil && rd != nil {
			// Nameservers and search domains are tried in order: only options are a set.
			wd.Options = alignList(wd.Options, rd.Options, func(o string) string { return o })
		}
	}
	if wp, rp := out.TaskTemplate.Placement, running.TaskTemplate.Placement; wp != nil && rp != nil {
		wp.Constraints = alignList(wp.Constraints, rp.Constraints, constraintKey)
		wp.Platforms = alignList(wp.Platforms, rp.Platforms, jsonKey)
	}
	out.TaskTemplate.Networks = alignList(out.TaskTemplate.Networks, running.TaskTemplate.Networks, func(n swarmtypes.NetworkAttachmentConfig) string {
		if id, ok := opts.networkIDs[n.Target]; ok {
			n.Target = id
		}
		aliases := slices.Clone(n.Aliases)
		sort.Strings(aliases)
		n.Aliases = aliases
		return jsonKey(n)
	})
	// An attachment matched by ID is written by name again: the rendered spec's networks
	// are names, and Swarm accepts either.
	for i, n := range out.TaskTemplate.Networks {
		for name, id := range opts.networkIDs {
			if n.Target == id {
				out.TaskTemplate.Networks[i].Target = name
			}
		}
	}
	if we, re := out.EndpointSpec, running.EndpointSpec; we != nil && re != nil {
		we.Ports = alignList(we.Ports, re.Ports, portKey)
	}
	return out
}

// alignList puts the entries of want that running holds too (equal keys) in running's
// order, as running spells them, followed by the entries only want has, in want's order.
// With no entry in common want is returned as it is.
func alignList[T any](want, running []T, key func(T) string) []T {
	if len(want) == 0 || len(running) == 0 {
		return want
	}
	unused := make(map[string][]int, len(want))
	for i, w := range want {
		k := key(w)
		unused[k] = append(unused[k], i)
	}
	taken := make([]bool, len(want))
	out := make([]T, 0, len(want))
	for _, r := range running {
		k := key(r)
		if idx := unused[k]; len(idx) > 0 {
			taken[idx[0]] = true
			unused[k] = idx[1:]
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return want
	}
	for i, w := range want {
		if !taken[i] {
			out = append(out, w)
		}
	}
	return out
}

func jsonKey[T any](v T) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // Docker's API types always marshal
	}
	return string(b)
}

// mountKey is a mount's meaning: paths cleaned, options that hold nothing dropped.
func mountKey(m mount.Mount) string {
	m.Target = path.Clean(m.Target)
	if m.Type == mount.TypeBind && m.Source != "" {
		m.Source = path.Clean(m.Source)
	}
	if m.BindOptions != nil && reflect.ValueOf(*m.BindOptions).IsZero() {
		m.BindOptions = nil
	}
	if v := m.VolumeOptions; v != nil && !v.NoCopy && v.Subpath == "" && len(v.Labels) == 0 && v.DriverConfig == nil {
		m.VolumeOptions = nil
	}
	if m.TmpfsOptions != nil && reflect.ValueOf(*m.TmpfsOptions).IsZero() {
		m.TmpfsOptions = nil
	}
	return jsonKey(m)
}

// secretKey: Swarm places a relative secret target under /run/secrets.
func secretKey(r *swarmtypes.SecretReference) string {
	if r == nil {
		return "null"
	}
	c := *r
	if c.File != nil {
		f := *c.File
		f.Name = absTarget("/run/secrets", f.Name)
		c.File = &f
	}
	return jsonKey(c)
}

// configKey: Swarm places a relative config target under /.
func configKey(r *swarmtypes.ConfigReference) string {
	if r == nil {
		return "null"
	}
	c := *r
	if c.File != nil {
		f := *c.File
		f.Name = absTarget("/", f.Name)
		c.File = &f
	}
	return jsonKey(c)
}

func absTarget(dir, name string) string {
	if !path.IsAbs(name) {
		name = path.Join(dir, name)
	}
	return path.Clean(name)
}

// portKey fills in Swarm's defaults: tcp, ingress.
func portKey(p swarmtypes.PortConfig) string {
	if p.Protocol == "" {
		p.Protocol = swarmtypes.PortConfigProtocolTCP
	}
	if p.PublishMode == "" {
		p.PublishMode = swarmtypes.PortConfigPublishModeIngress
	}
	return jsonKey(p)
}

// constraintKey ignores the blanks around the operator: "node.role==manager" and
// "node.role == manager" are the same constraint to Swarm.
func constraintKey(c string) string {
	for _, op := range []string{"==", "!="} {
		if l, r, ok := strings.Cut(c, op); ok {
			return strings.TrimSpace(l) + op + strings.TrimSpace(r)
		}
	}
	return strings.TrimSpace(c)
}

// sameImage tells whether two image references run the same image: "redis",
// "redis:latest" and "docker.io/library/redis:latest" do. With digests on both, the
// digests decide and tags do not ("redis:7@sha256:x" is "redis:latest@sha256:x", what
// an image automation pinning a digest Swarm had resolved writes); a digest only the
// running image has (pinned by a registry lookup: docker stack deploy's, or
// resolveImage's) counts as the same image when keepDigest is set and the tags agree.
// A digest only want names is a change: which digest the running tag is at is unknown
// without asking the registry.
func sameImage(want, running string, keepDigest bool) bool {
	if want == running {
		return true
	}
	w, err1 := reference.ParseNormalizedNamed(want)
	r, err2 := reference.ParseNormalizedNamed(running)
	if err1 != nil || err2 != nil || w.Name() != r.Name() {
		return false
	}
	wd, wHas := w.(reference.Digested)
	rd, rHas := r.(reference.Digested)
	switch {
	case wHas && rHas:
		return wd.Digest() == rd.Digest()
	case wHas, rHas && !keepDigest:
		return false
	}
	return tagOf(w) == tagOf(r)
}

// pinned tells whether an image reference names a digest.
func pinned(image string) bool {
	n, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return false
	}
	_, ok := n.(reference.Digested)
	return ok
}

// keepPlatforms gives want running's placement platforms when want names none.
func keepPlatforms(want *swarmtypes.TaskSpec, running swarmtypes.TaskSpec) {
	if running.Placement == nil || len(running.Placement.Platforms) == 0 {
		return
	}
	if want.Placement == nil {
		want.Placement = &swarmtypes.Placement{}
	}
	if len(want.Placement.Platforms) == 0 {
		want.Placement.Platforms = slices.Clone(running.Placement.Platforms)
	}
}

// tagOf is a reference's tag, latest when it names none.
func tagOf(n reference.Named) string {
	if t, ok := n.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}

// CloneSpec is a deep copy of a service spec, through JSON as Docker sends it.
func CloneSpec(s swarmtypes.ServiceSpec) swarmtypes.ServiceSpec {
	var out swarmtypes.ServiceSpec
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// aligner aligns the specs of one apply with the services they replace. It reads the
// stack's networks and existing configs' data once, when first needed.
type aligner struct {
	conn       swarm.Swarm
	rendered   *compose.Stack
	keepDigest bool

	networkIDs map[string]string
	configData map[string][]byte // by config ID; nil data: could not be read
}

func newAligner(conn swarm.Swarm, rendered *compose.Stack, queryRegistry bool) *aligner {
	return &aligner{conn: conn, rendered: rendered, keepDigest: !queryRegistry, configData: map[string][]byte{}}
}

// align returns the spec to write over running.
func (a *aligner) align(ctx context.Context, want, running swarmtypes.ServiceSpec) (swarmtypes.ServiceSpec, error) {
	if a.networkIDs == nil && len(running.TaskTemplate.Networks) > 0 {
		nets, err := a.conn.StackNetworks(ctx, a.rendered.Name)
		if err != nil {
			return want, err
		}
		a.networkIDs = map[string]string{}
		for _, n := range nets {
			a.networkIDs[n.Name] = n.ID
		}
	}
	if err := a.reuseConfigs(ctx, &want, running); err != nil {
		return want, err
	}
	return alignWithRunning(want, running, alignOptions{keepDigest: a.keepDigest, networkIDs: a.networkIDs}), nil
}

// reuseConfigs points a wanted config reference at the config the running service
// already uses at the same target when that config holds the same data (docker stack
// deploy names configs <stack>_<key>, the operator by a hash of the data): the task
// template then does not change. Secrets cannot be read back, so they are never reused.
func (a *aligner) reuseConfigs(ctx context.Context, want *swarmtypes.ServiceSpec, running swarmtypes.ServiceSpec) error {
	ws, rs := want.TaskTemplate.ContainerSpec, running.TaskTemplate.ContainerSpec
	if ws == nil || rs == nil || len(ws.Configs) == 0 || len(rs.Configs) == 0 {
		return nil
	}
	rendered := map[string][]byte{}
	for _, c := range a.rendered.Configs {
		if !c.External {
			rendered[c.Name] = c.Spec.Data
		}
	}
	for _, w := range ws.Configs {
		data, ours := rendered[w.ConfigName]
		if !ours || w.File == nil {
			continue // external configs are named as they are; runtime configs have no file
		}
		for _, r := range rs.Configs {
			if r.File == nil || r.ConfigName == w.ConfigName || configKey(withConfig(w, r)) != configKey(r) {
				continue
			}
			have, err := a.dataOf(ctx, r.ConfigID)
			if err != nil {
				return err
			}
			if have != nil && bytes.Equal(have, data) {
				w.ConfigName, w.ConfigID = r.ConfigName, r.ConfigID
				break
			}
		}
	}
	return nil
}

// withConfig is w naming r's config: what w would be if it reused it.
func withConfig(w, r *swarmtypes.ConfigReference) *swarmtypes.ConfigReference {
	c := *w
	c.ConfigName, c.ConfigID = r.ConfigName, r.ConfigID
	return &c
}

func (a *aligner) dataOf(ctx context.Context, id string) ([]byte, error) {
	if d, ok := a.configData[id]; ok {
		return d, nil
	}
	d, err := a.conn.ConfigData(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", id, err)
	}
	if d == nil {
		d = []byte{}
	}
	a.configData[id] = d
	return d, nil
}

// ServicesToAdopt are the services without an owner that the compose files name: those
// the write takes over. A service the files do not name (made by hand with the stack's
// label, or dropped from the files) is never written, so never adopted.
func ServicesToAdopt(rendered *compose.Stack, current []swarmtypes.Service) []swarmtypes.Service {
	named := map[string]bool{}
	for _, svc := range rendered.Services {
		named[svc.Name] = true
	}
	var out []swarmtypes.Service
	for _, svc := range current {
		if svc.Spec.Labels[swarmv1.LabelOwner] == "" && named[svc.Spec.Name] {
			out = append(out, svc)
		}
	}
	return out
}

// ServicesRollingForSecrets names the services that exist and use a secret the stack
// creates (external secrets keep their names and roll nothing).
func ServicesRollingForSecrets(rendered *compose.Stack, existing []swarmtypes.Service) []string {
	created := map[string]bool{}
	for _, s := range rendered.Secrets {
		if !s.External {
			created[s.Name] = true
		}
	}
	exists := map[string]bool{}
	for _, svc := range existing {
		exists[svc.Spec.Name] = true
	}
	var out []string
	for _, svc := range rendered.Services {
		cs := svc.Spec.TaskTemplate.ContainerSpec
		if !exists[svc.Name] || cs == nil {
			continue
		}
		if slices.ContainsFunc(cs.Secrets, func(r *swarmtypes.SecretReference) bool { return created[r.SecretName] }) {
			out = append(out, svc.Name)
		}
	}
	return out
}

// AdoptedRevision names what ran before the adoption: a digest of the services' specs,
// keyed like the operator's revisions (specs may hold values from secrets).
func AdoptedRevision(services []swarmtypes.Service, key []byte) string {
	specs := make([]swarmtypes.ServiceSpec, 0, len(services))
	for _, svc := range services {
		specs = append(specs, svc.Spec)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(jsonKey(specs)))
	return "sha256:" + hex.EncodeToString(mac.Sum(nil))
}
