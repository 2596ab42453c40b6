package compose

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

func (c *converter) service(key string, s types.ServiceConfig) (Service, error) {
	at := func(p ...string) []string { return append([]string{"services", key}, p...) }
	// fail points at the key in error: the one a fieldError names, or at.
	fail := func(err error, at []string) (Service, error) {
		var fe *fieldError
		if errors.As(err, &fe) {
			at = append([]string{"services", key}, fe.path...)
		}
		return Service{}, errorAt(c.srcs, at, "service %q: %v", key, err)
	}
	if name := c.scope(key); len(name) > 63 || !swarmNameRe.MatchString(name) {
		return fail(fmt.Errorf("service name %q is not valid in Swarm: at most 63 letters, digits, '-' and '_', starting and ending with a letter or digit", shorten(name)), at())
	}
	if s.Image == "" {
		return fail(fmt.Errorf("no image specified (Swarm does not build images)"), at())
	}
	if _, err := reference.ParseAnyReference(s.Image); err != nil {
		return fail(fmt.Errorf("invalid image reference %q: %w", s.Image, err), at("image"))
	}
	deploy := types.DeployConfig{}
	if s.Deploy != nil {
		deploy = *s.Deploy
	}

	env, err := c.environment(key, s)
	if err != nil {
		return Service{}, err
	}
	mounts, err := c.mounts(key, s.Volumes)
	if err != nil {
		return Service{}, err
	}
	secrets, err := c.secretRefs(key, s.Secrets)
	if err != nil {
		return Service{}, err
	}
	configs, err := c.configRefs(key, s.Configs)
	if err != nil {
		return Service{}, err
	}
	credSpec, err := c.credentialSpec(key, s.CredentialSpec, &configs)
	if err != nil {
		return Service{}, err
	}
	health, err := healthcheck(s.HealthCheck)
	if err != nil {
		return fail(err, at("healthcheck"))
	}
	mode, err := serviceMode(deploy.Mode, deploy.Replicas)
	if err != nil {
		return fail(err, at("deploy"))
	}
	resources, err := resources(deploy.Resources)
	if err != nil {
		return fail(err, at("deploy", "resources"))
	}
	restart, err := c.restartPolicy(key, s.Restart, deploy.RestartPolicy)
	if err != nil {
		return fail(err, at("deploy"))
	}
	update, err := updateConfig("update_config", deploy.UpdateConfig)
	if err != nil {
		return fail(err, at("deploy"))
	}
	rollback, err := updateConfig("rollback_config", deploy.RollbackConfig)
	if err != nil {
		return fail(err, at("deploy"))
	}
	endpoint, err := c.endpoint(key, deploy.EndpointMode, s.Ports)
	if err != nil {
		return Service{}, err
	}

	var logDriver *swarm.Driver
	if s.Logging != nil {
		logDriver = &swarm.Driver{Name: s.Logging.Driver, Options: s.Logging.Options}
	}
	var dns *swarm.DNSConfig
	if len(s.DNS) > 0 || len(s.DNSSearch) > 0 || len(s.DNSOpts) > 0 {
		dns = &swarm.DNSConfig{Nameservers: s.DNS, Search: s.DNSSearch, Options: s.DNSOpts}
	}
	capAdd, capDrop := capabilities(s.CapAdd, s.CapDrop)
	name := c.scope(key)
	serviceLabels := c.labels(deploy.Labels)
	serviceLabels[labelImage] = s.Image

	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: serviceLabels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           s.Image,
				Labels:          c.labels(s.Labels),
				Command:         s.Entrypoint,
				Args:            s.Command,
				Hostname:        s.Hostname,
				Env:             env,
				Dir:             s.WorkingDir,
				User:            s.User,
				Privileges:      &swarm.Privileges{CredentialSpec: credSpec},
				Init:            s.Init,
				StopSignal:      s.StopSignal,
				TTY:             s.Tty,
				OpenStdin:       s.StdinOpen,
				ReadOnly:        s.ReadOnly,
				Mounts:          mounts,
				StopGracePeriod: (*time.Duration)(s.StopGracePeriod),
				Healthcheck:     health,
				Hosts:           extraHosts(s.ExtraHosts),
				DNSConfig:       dns,
				Secrets:         secrets,
				Configs:         configs,
				Isolation:       container.Isolation(s.Isolation),
				Sysctls:         s.Sysctls,
				CapabilityAdd:   capAdd,
				CapabilityDrop:  capDrop,
				Ulimits:         ulimits(s.Ulimits),
				OomScoreAdj:     s.OomScoreAdj,
			},
			Resources:     resources,
			RestartPolicy: restart,
			Placement: &swarm.Placement{
				Constraints: deploy.Placement.Constraints,
				Preferences: preferences(deploy.Placement.Preferences),
				MaxReplicas: deploy.Placement.MaxReplicas,
			},
			Networks:  c.attachments(key, s.Networks),
			LogDriver: logDriver,
		},
		Mode:           mode,
		UpdateConfig:   update,
		RollbackConfig: rollback,
		EndpointSpec:   endpoint,
	}
	return Service{Key: key, Name: name, Spec: spec, Hash: digest(spec)}, nil
}

// environment merges env_file entries (in order) and environment, which
// wins; entries without a value take it from Options.Variables, as stack
// deploy takes it from its own environment.
func (c *converter) environment(key string, s types.ServiceConfig) ([]string, error) {
	vars := map[string]*string{}
	for i, ef := range s.EnvFiles {
		data, err := c.readFile(ef.Path)
		if err != nil {
			if !ef.Required {
				continue
			}
			return nil, errorAt(c.srcs, []string{"services", key, "env_file", strconv.Itoa(i)}, "service %q: env_file: %v", key, err)
		}
		if err := c.parseEnvFile(data, vars); err != nil {
			return nil, errorAt(c.srcs, []string{"services", key, "env_file", strconv.Itoa(i)}, "service %q: env_file %q: %v", key, ef.Path, err)
		}
	}
	for k, v := range s.Environment {
		if v == nil {
			if val, ok := c.opts.Variables[k]; ok {
				v = &val
			}
		}
		vars[k] = v
	}
	if len(vars) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		if v == nil {
			out = append(out, k)
		} else {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out, nil
}

// parseEnvFile reads docker's env-file format (the one of `docker run
// --env-file`, which stack deploy uses): KEY=VALUE lines taken verbatim,
// comments, and bare KEY lines that take the value of a variable.
func (c *converter) parseEnvFile(data []byte, vars map[string]*string) error {
	text, err := toUTF8(data)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, len(text)+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, hasValue := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("line %d: invalid variable name %q", n, k)
		}
		if !hasValue {
			val, ok := c.opts.Variables[k]
			if !ok {
				continue
			}
			v = val
		}
		vars[k] = &v
	}
	return sc.Err()
}

func (c *converter) mounts(key string, vols []types.ServiceVolumeConfig) ([]mount.Mount, error) {
	if len(vols) == 0 {
		return nil, nil
	}
	out := make([]mount.Mount, 0, len(vols))
	for i, v := range vols {
		at := []string{"services", key, "volumes", strconv.Itoa(i)}
		m := mount.Mount{
			Type:        mount.Type(v.Type),
			Source:      v.Source,
			Target:      v.Target,
			ReadOnly:    v.ReadOnly,
			Consistency: mount.Consistency(v.Consistency),
		}
		switch v.Type {
		case types.VolumeTypeVolume, "":
			m.Type = mount.TypeVolume
			if v.Source == "" {
				break // anonymous volume
			}
			vol, ok := c.p.Volumes[v.Source]
			if !ok {
				return nil, errorAt(c.srcs, at, "service %q: undefined volume %q", key, v.Source)
			}
			m.Source = c.scope(v.Source)
			switch {
			case vol.Name != "":
				m.Source = vol.Name
			case bool(vol.External):
				m.Source = v.Source
			}
			m.VolumeOptions = &mount.VolumeOptions{}
			if v.Volume != nil {
				m.VolumeOptions.NoCopy, m.VolumeOptions.Subpath = v.Volume.NoCopy, v.Volume.Subpath
			}
			if !vol.External {
				m.VolumeOptions.Labels = c.labels(vol.Labels)
				if vol.Driver != "" || vol.DriverOpts != nil {
					m.VolumeOptions.DriverConfig = &mount.Driver{Name: vol.Driver, Options: vol.DriverOpts}
				}
			}
		case types.VolumeTypeBind:
			// Swarm resolves nothing against a working directory, and
			// there is none here: only absolute host paths can work.
			if !path.IsAbs(v.Source) {
				return nil, errorAt(c.srcs, at, "service %q: bind mount source %q must be an absolute path", key, v.Source)
			}
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation)}
			}
		case types.VolumeTypeTmpfs:
			if v.Source != "" {
				return nil, errorAt(c.srcs, at, "service %q: a tmpfs mount has no source", key)
			}
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: os.FileMode(v.Tmpfs.Mode)}
			}
		case types.VolumeTypeNamedPipe:
		case types.VolumeTypeImage:
			if v.Image != nil {
				m.ImageOptions = &mount.ImageOptions{Subpath: v.Image.SubPath}
			}
		default:
			return nil, errorAt(c.srcs, at, "service %q: volume type %q is not supported by Swarm", key, v.Type)
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, nil
}

func (c *converter) secretRefs(key string, refs []types.ServiceSecretConfig) ([]*swarm.SecretReference, error) {
	var out []*swarm.SecretReference
	for _, r := range refs {
		name, ok := c.secretNames[r.Source]
		if !ok {
			return nil, errorAt(c.srcs, []string{"services", key, "secrets", r.Source}, "service %q: undefined secret %q", key, r.Source)
		}
		target := types.FileReferenceConfig(r)
		out = append(out, &swarm.SecretReference{
			SecretName: name,
			File:       fileTarget(target, "/run/secrets/"+r.Source),
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].SecretName < out[j].SecretName })
	return out, nil
}

func (c *converter) configRefs(key string, refs []types.ServiceConfigObjConfig) ([]*swarm.ConfigReference, error) {
	var out []*swarm.ConfigReference
	for _, r := range refs {
		name, ok := c.configNames[r.Source]
		if !ok {
			return nil, errorAt(c.srcs, []string{"services", key, "configs", r.Source}, "service %q: undefined config %q", key, r.Source)
		}
		out = append(out, &swarm.ConfigReference{
			ConfigName: name,
			File:       (*swarm.ConfigReferenceFileTarget)(fileTarget(types.FileReferenceConfig(r), "/"+r.Source)),
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ConfigName < out[j].ConfigName })
	return out, nil
}

// fileTarget applies stack deploy's defaults: uid/gid 0, mode 0444.
func fileTarget(r types.FileReferenceConfig, defaultTarget string) *swarm.SecretReferenceFileTarget {
	t := &swarm.SecretReferenceFileTarget{Name: r.Target, UID: r.UID, GID: r.GID, Mode: 0o444}
	if t.Name == "" {
		t.Name = defaultTarget
	}
	if t.UID == "" {
		t.UID = "0"
	}
	if t.GID == "" {
		t.GID = "0"
	}
	if r.Mode != nil {
		t.Mode = os.FileMode(*r.Mode)
	}
	return t
}

// credentialSpec is Windows-only. A spec held in a config also needs a
// runtime reference to that config.
func (c *converter) credentialSpec(key string, cs *types.CredentialSpecConfig, refs *[]*swarm.ConfigReference) (*swarm.CredentialSpec, error) {
	if cs == nil || cs.Config == "" && cs.File == "" && cs.Registry == "" {
		return nil, nil
	}
	at := []string{"services", key, "credential_spec"}
	n := 0
	for _, v := range []string{cs.Config, cs.File, cs.Registry} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return nil, errorAt(c.srcs, at, "service %q: credential_spec: set only one of config, file and registry", key)
	}
	out := &swarm.CredentialSpec{File: cs.File, Registry: cs.Registry}
	if cs.Config != "" {
		name, ok := c.configNames[cs.Config]
		if !ok {
			return nil, errorAt(c.srcs, at, "service %q: credential_spec: undefined config %q", key, cs.Config)
		}
		out.Config = name
		*refs = append(*refs, &swarm.ConfigReference{ConfigName: name, Runtime: &swarm.ConfigReferenceRuntimeTarget{}})
	}
	return out, nil
}

func healthcheck(h *types.HealthCheckConfig) (*container.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	if h.Disable {
		if len(h.Test) > 0 && (len(h.Test) != 1 || h.Test[0] != "NONE") {
			return nil, badField([]string{"healthcheck", "disable"}, "healthcheck: test and disable can't be set at the same time")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	out := &container.HealthConfig{Test: h.Test}
	if h.Interval != nil {
		out.Interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		out.Timeout = time.Duration(*h.Timeout)
	}
	if h.StartPeriod != nil {
		out.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.StartInterval != nil {
		out.StartInterval = time.Duration(*h.StartInterval)
	}
	if h.Retries != nil {
		out.Retries = int(*h.Retries)
	}
	return out, nil
}

// swarmNameRe is what Swarm accepts as a service name (a DNS label; 63 characters at
// most, checked apart).
var swarmNameRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`)

// MaxReplicas is the largest replica count accepted: far beyond any real swarm
// (the largest tested ran 100,000 containers on 4,700 nodes), it catches typos and
// values that overflowed while parsing, before Swarm's orchestrator tries to create
// the tasks.
const MaxReplicas = 100000

func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func serviceMode(mode string, replicas *int) (swarm.ServiceMode, error) {
	var n *uint64
	if replicas != nil {
		// A count too large for an int wraps around to a negative one while parsing.
		if *replicas < 0 || *replicas > MaxReplicas {
			return swarm.ServiceMode{}, badField([]string{"deploy", "replicas"}, "replicas must be a whole number from 0 to %d", MaxReplicas)
		}
		v := uint64(*replicas)
		n = &v
	}
	switch mode {
	case "replicated", "":
		if n == nil {
			one := uint64(1)
			n = &one
		}
		return swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: n}}, nil
	case "replicated-job":
		return swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: n, TotalCompletions: n}}, nil
	case "global", "global-job":
		if n != nil {
			return swarm.ServiceMode{}, badField([]string{"deploy", "replicas"}, "replicas can only be used with replicated or replicated-job mode")
		}
		if mode == "global" {
			return swarm.ServiceMode{Global: &swarm.GlobalService{}}, nil
		}
		return swarm.ServiceMode{GlobalJob: &swarm.GlobalJob{}}, nil
	}
	return swarm.ServiceMode{}, badField([]string{"deploy", "mode"}, "unknown mode %q (use replicated, global, replicated-job or global-job)", mode)
}

func resources(r types.Resources) (*swarm.ResourceRequirements, error) {
	out := &swarm.ResourceRequirements{}
	if l := r.Limits; l != nil {
		cpus, err := nanoCPUs(l.NanoCPUs)
		if err != nil {
			return nil, badField([]string{"deploy", "resources", "limits", "cpus"}, "%v", err)
		}
		if l.MemoryBytes < 0 {
			// A size too large for an int64 wraps around while parsing.
			return nil, badField([]string{"deploy", "resources", "limits", "memory"}, "memory limit out of range")
		}
		out.Limits = &swarm.Limit{NanoCPUs: cpus, MemoryBytes: int64(l.MemoryBytes), Pids: l.Pids}
	}
	if rv := r.Reservations; rv != nil {
		cpus, err := nanoCPUs(rv.NanoCPUs)
		if err != nil {
			return nil, badField([]string{"deploy", "resources", "reservations", "cpus"}, "%v", err)
		}
		if rv.MemoryBytes < 0 {
			return nil, badField([]string{"deploy", "resources", "reservations", "memory"}, "memory reservation out of range")
		}
		out.Reservations = &swarm.Resources{NanoCPUs: cpus, MemoryBytes: int64(rv.MemoryBytes)}
		for _, g := range rv.GenericResources {
			if d := g.DiscreteResourceSpec; d != nil {
				out.Reservations.GenericResources = append(out.Reservations.GenericResources,
					swarm.GenericResource{DiscreteResourceSpec: &swarm.DiscreteGenericResource{Kind: d.Kind, Value: d.Value}})
			}
		}
	}
	return out, nil
}

// nanoCPUs converts exactly, as `docker service create --limit-cpu` does:
// compose-go holds cpus as a float32, whose shortest decimal form is what
// the user wrote ("0.1" stays 100000000, not 100000001).
func nanoCPUs(v types.NanoCPUs) (int64, error) {
	if v == 0 {
		return 0, nil
	}
	s := strconv.FormatFloat(float64(v), 'f', -1, 32)
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("invalid cpus value %s", s)
	}
	r.Mul(r, big.NewRat(1e9, 1))
	if !r.IsInt() {
		return 0, fmt.Errorf("cpus value %s is too precise", s)
	}
	return r.Num().Int64(), nil
}

// restartPolicy prefers deploy.restart_policy; like stack deploy it falls
// back to the legacy `restart`, and leaves Swarm's default when both are
// absent.
func (c *converter) restartPolicy(key, restart string, p *types.RestartPolicy) (*swarm.RestartPolicy, error) {
	if p != nil {
		if restart != "" {
			c.warn("service %q: key %q is ignored because deploy.restart_policy is set", key, "restart")
		}
		switch p.Condition {
		case "", "none", "on-failure", "any":
		default:
			return nil, badField([]string{"deploy", "restart_policy", "condition"}, "restart_policy condition %q is not one of none, on-failure, any", p.Condition)
		}
		return &swarm.RestartPolicy{
			Condition:   swarm.RestartPolicyCondition(p.Condition),
			Delay:       (*time.Duration)(p.Delay),
			MaxAttempts: p.MaxAttempts,
			Window:      (*time.Duration)(p.Window),
		}, nil
	}
	name, count, _ := strings.Cut(restart, ":")
	var attempts *uint64
	if count != "" {
		n, err := strconv.ParseUint(count, 10, 63)
		if err != nil || name != "on-failure" {
			return nil, badField([]string{"restart"}, "invalid restart policy %q", restart)
		}
		if n > 0 {
			attempts = &n
		}
	}
	switch name {
	case "", "no":
		return nil, nil
	case "always", "unless-stopped":
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, MaxAttempts: attempts}, nil
	case "on-failure":
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: attempts}, nil
	}
	return nil, badField([]string{"restart"}, "invalid restart policy %q (use no, always, on-failure or unless-stopped)", restart)
}

// updateConfig applies stack deploy's one default: parallelism 1 when
// update_config/rollback_config is given without it. Values Swarm would
// refuse are refused here, where the file and line can be named.
func updateConfig(section string, u *types.UpdateConfig) (*swarm.UpdateConfig, error) {
	if u == nil {
		return nil, nil
	}
	field := func(k string) []string { return []string{"deploy", section, k} }
	switch u.FailureAction {
	case "", swarm.UpdateFailureActionPause, swarm.UpdateFailureActionContinue, swarm.UpdateFailureActionRollback:
	default:
		return nil, badField(field("failure_action"), "%s: failure_action %q is not one of pause, continue, rollback", section, u.FailureAction)
	}
	switch u.Order {
	case "", swarm.UpdateOrderStopFirst, swarm.UpdateOrderStartFirst:
	default:
		return nil, badField(field("order"), "%s: order %q is not one of stop-first, start-first", section, u.Order)
	}
	if u.MaxFailureRatio < 0 || u.MaxFailureRatio > 1 {
		return nil, badField(field("max_failure_ratio"), "%s: max_failure_ratio must be between 0 and 1", section)
	}
	parallelism := uint64(1)
	if u.Parallelism != nil {
		parallelism = *u.Parallelism
	}
	return &swarm.UpdateConfig{
		Parallelism:     parallelism,
		Delay:           time.Duration(u.Delay),
		FailureAction:   u.FailureAction,
		Monitor:         time.Duration(u.Monitor),
		MaxFailureRatio: u.MaxFailureRatio,
		Order:           u.Order,
	}, nil
}

func (c *converter) endpoint(key, mode string, ports []types.ServicePortConfig) (*swarm.EndpointSpec, error) {
	out := &swarm.EndpointSpec{Mode: swarm.ResolutionMode(strings.ToLower(mode))}
	switch out.Mode {
	case "", swarm.ResolutionModeVIP, swarm.ResolutionModeDNSRR:
	default:
		return nil, errorAt(c.srcs, []string{"services", key, "deploy", "endpoint_mode"}, "service %q: endpoint_mode %q is not one of vip, dnsrr", key, mode)
	}
	for i, p := range ports {
		at := []string{"services", key, "ports", strconv.Itoa(i)}
		pc := swarm.PortConfig{
			Protocol:    swarm.PortConfigProtocol(p.Protocol),
			TargetPort:  p.Target,
			PublishMode: swarm.PortConfigPublishMode(p.Mode),
		}
		switch pc.PublishMode {
		case "", swarm.PortConfigPublishModeIngress, swarm.PortConfigPublishModeHost:
		default:
			return nil, errorAt(c.srcs, at, "service %q: port mode %q is not one of ingress, host", key, p.Mode)
		}
		if p.Target == 0 || p.Target > 65535 {
			return nil, errorAt(c.srcs, at, "service %q: target port %d is not between 1 and 65535", key, p.Target)
		}
		if p.Published != "" {
			n, err := strconv.ParseUint(p.Published, 10, 16)
			if errors.Is(err, strconv.ErrRange) {
				return nil, errorAt(c.srcs, at, "service %q: published port %q is not between 1 and 65535", key, p.Published)
			}
			if err != nil {
				return nil, errorAt(c.srcs, at, "service %q: published port %q: Swarm publishes single ports, not ranges", key, p.Published)
			}
			pc.PublishedPort = uint32(n)
		}
		if p.HostIP != "" {
			c.warn("service %q: port host_ip %q is ignored by Swarm", key, p.HostIP)
		}
		out.Ports = append(out.Ports, pc)
	}
	// Swarm refuses ports it cannot route: say so here, with the file. The
	// merged list can hold ports of several files, so the error points at
	// the ports key rather than at an index.
	published := map[string]uint32{}
	for _, pc := range out.Ports {
		if out.Mode == swarm.ResolutionModeDNSRR && pc.PublishMode != swarm.PortConfigPublishModeHost {
			return nil, errorAt(c.srcs, []string{"services", key, "ports"}, "service %q: port %d is published through the ingress routing mesh, which endpoint_mode dnsrr cannot use; publish it with mode: host", key, pc.TargetPort)
		}
		if pc.PublishedPort == 0 {
			continue
		}
		// Swarm keys published ports by number and protocol, whatever the mode.
		k := fmt.Sprintf("%d/%s", pc.PublishedPort, cmp.Or(string(pc.Protocol), "tcp"))
		if target, dup := published[k]; dup {
			return nil, errorAt(c.srcs, []string{"services", key, "ports"}, "service %q: published port %s is mapped twice (to target ports %d and %d), which Swarm refuses; "+
				"files are merged by the compose specification: a later file adds ports, it does not replace one with the same published port", key, k, target, pc.TargetPort)
		}
		published[k] = pc.TargetPort
	}
	sort.Slice(out.Ports, func(i, j int) bool {
		a, b := out.Ports[i], out.Ports[j]
		if a.PublishedPort != b.PublishedPort {
			return a.PublishedPort < b.PublishedPort
		}
		if a.TargetPort != b.TargetPort {
			return a.TargetPort < b.TargetPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.PublishMode < b.PublishMode
	})
	return out, nil
}

// attachments attaches the service to its networks (the default network
// when it lists none). Like stack deploy, the service key is added as an
// alias on user-defined networks, so `http://<key>/` works across the stack.
func (c *converter) attachments(key string, nets map[string]*types.ServiceNetworkConfig) []swarm.NetworkAttachmentConfig {
	if len(nets) == 0 {
		nets = map[string]*types.ServiceNetworkConfig{"default": nil}
	}
	out := make([]swarm.NetworkAttachmentConfig, 0, len(nets))
	for _, n := range sortedKeys(nets) {
		a := swarm.NetworkAttachmentConfig{Target: c.networkName(n)}
		if cfg := nets[n]; cfg != nil {
			a.Aliases = append(a.Aliases, cfg.Aliases...)
			a.DriverOpts = cfg.DriverOpts
		}
		if container.NetworkMode(a.Target).IsUserDefined() {
			a.Aliases = append(a.Aliases, key)
		}
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// extraHosts converts host:ip pairs to the hosts-file lines Swarm takes.
func extraHosts(h types.HostsList) []string {
	var out []string
	for host, ips := range h {
		for _, ip := range ips {
			out = append(out, ip+" "+host)
		}
	}
	sort.Strings(out)
	return out
}

func ulimits(in map[string]*types.UlimitsConfig) []*container.Ulimit {
	var out []*container.Ulimit
	for _, name := range sortedKeys(in) {
		u := in[name]
		if u == nil {
			continue
		}
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		out = append(out, &container.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	return out
}

func preferences(in []types.PlacementPreferences) []swarm.PlacementPreference {
	var out []swarm.PlacementPreference
	for _, p := range in {
		out = append(out, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: p.Spread}})
	}
	return out
}

// capabilities normalises like the docker CLI: upper case, CAP_ prefix, ALL
// absorbing the rest, add winning over drop, sorted and deduplicated.
func capabilities(add, drop []string) (capAdd, capDrop []string) {
	norm := func(in []string) map[string]bool {
		m := map[string]bool{}
		for _, c := range in {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c != "ALL" && c != "RESET" && !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			m[c] = true
		}
		if m["ALL"] {
			m = map[string]bool{"ALL": true}
		}
		delete(m, "RESET")
		return m
	}
	a, d := norm(add), norm(drop)
	for c := range d {
		if !a[c] {
			capDrop = append(capDrop, c)
		}
	}
	for c := range a {
		capAdd = append(capAdd, c)
	}
	sort.Strings(capAdd)
	sort.Strings(capDrop)
	return capAdd, capDrop
}

// fieldError is a conversion error about the value of one key; path is the
// key's place below the service, so the error can give its line.
type fieldError struct {
	path []string
	msg  string
}

func (e *fieldError) Error() string { return e.msg }

func badField(path []string, format string, args ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}
