package compose

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

const (
	labelNamespace  = "com.docker.stack.namespace"
	labelImage      = "com.docker.stack.image"
	labelComposeKey = "swarm.swarmops.io/compose-key"
)

// converter turns the merged compose-go project into Swarm objects.
type converter struct {
	stack    string
	p        *types.Project
	srcs     []*source
	opts     Options
	warnings []string
	// reads records what ReadFile returned, so Cache can tell when a hit
	// is stale.
	reads map[string]fileRead
	// compose key -> Swarm name
	secretNames, configNames map[string]string
	// red learns each secret's data, which no error or warning may quote.
	red *redactor
}

func (c *converter) convert() (*Stack, error) {
	st := &Stack{Name: c.stack}
	var err error
	if st.Secrets, err = c.secrets(); err != nil {
		return nil, err
	}
	if st.Configs, err = c.configs(); err != nil {
		return nil, err
	}
	if st.Networks, err = c.networks(); err != nil {
		return nil, err
	}
	for _, key := range sortedKeys(c.p.Services) {
		svc, err := c.service(key, c.p.Services[key])
		if err != nil {
			return nil, err
		}
		st.Services = append(st.Services, svc)
	}
	sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Name < st.Services[j].Name })
	if c.opts.OrderByDependsOn {
		if st.Waves, err = c.order(st.Services); err != nil {
			return nil, err
		}
	}
	// The revision covers the secret data: keyed like the names.
	st.Revision = keyedDigest(c.opts.NameKey, struct {
		Name     string
		Networks []Network
		Secrets  []Secret
		Configs  []Config
		Services []Service
	}{st.Name, st.Networks, st.Secrets, st.Configs, st.Services})
	st.Warnings = sortedUnique(c.warnings)
	return st, nil
}

func (c *converter) warn(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

func (c *converter) scope(key string) string { return c.stack + "_" + key }

// labels copies in and adds the stack label, which `docker stack ls/ps/rm`
// select on.
func (c *converter) labels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	out[labelNamespace] = c.stack
	return out
}

// networks returns the networks services use: like stack deploy, declared
// but unused networks are not created, and the default network exists only
// when a service has no networks key.
func (c *converter) networks() ([]Network, error) {
	used := map[string]bool{}
	for _, name := range sortedKeys(c.p.Services) {
		s := c.p.Services[name]
		if len(s.Networks) == 0 {
			used["default"] = true
		}
		for _, key := range sortedKeys(s.Networks) {
			if _, ok := c.p.Networks[key]; !ok && key != "default" {
				return nil, errorAt(c.srcs, []string{"services", name, "networks", key}, "service %q: undefined network %q", name, key)
			}
			used[key] = true
		}
	}
	var out []Network
	for _, key := range sortedKeys(used) {
		nw := c.p.Networks[key]
		if nw.External {
			out = append(out, Network{Name: c.networkName(key), External: true})
			continue
		}
		switch nw.Driver {
		case "bridge", "host", "none":
			return nil, errorAt(c.srcs, []string{"networks", key, "driver"}, "network %q: driver %q cannot be used by Swarm services; use overlay, or declare the network external", key, nw.Driver)
		}
		spec := network.CreateOptions{
			Driver:     cmp.Or(nw.Driver, "overlay"),
			Options:    nw.DriverOpts,
			Labels:     c.labels(nw.Labels),
			Internal:   nw.Internal,
			Attachable: nw.Attachable,
			EnableIPv4: nw.EnableIPv4,
			EnableIPv6: nw.EnableIPv6,
		}
		if ipam := nw.Ipam; ipam.Driver != "" || len(ipam.Config) > 0 || len(ipam.Options) > 0 {
			spec.IPAM = &network.IPAM{Driver: ipam.Driver, Options: ipam.Options}
			for _, pool := range ipam.Config {
				if pool != nil {
					spec.IPAM.Config = append(spec.IPAM.Config, network.IPAMConfig{
						Subnet: pool.Subnet, IPRange: pool.IPRange, Gateway: pool.Gateway, AuxAddress: pool.AuxiliaryAddresses,
					})
				}
			}
		}
		out = append(out, Network{Name: c.networkName(key), Spec: spec})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// networkName is the Swarm name of compose network key: its explicit name,
// the key itself for an external network, or <stack>_<key>.
func (c *converter) networkName(key string) string {
	nw := c.p.Networks[key]
	switch {
	case nw.Name != "":
		return nw.Name
	case bool(nw.External):
		return key
	}
	return c.scope(key)
}

func (c *converter) secrets() ([]Secret, error) {
	c.secretNames = map[string]string{}
	var out []Secret
	// stack deploy creates every declared secret, used or not
	for _, key := range sortedKeys(c.p.Secrets) {
		s := c.p.Secrets[key]
		if s.External {
			c.secretNames[key] = cmp.Or(s.Name, key)
			out = append(out, Secret{Key: key, Name: c.secretNames[key], External: true})
			continue
		}
		spec := swarm.SecretSpec{}
		var hashed []byte
		if s.Driver != "" {
			// the data lives in the driver's store; hash what selects it
			spec.Driver = &swarm.Driver{Name: s.Driver, Options: s.DriverOpts}
			hashed = []byte(digest(spec.Driver))
		} else {
			data, err := c.objectData("secret", key, types.FileObjectConfig(s), c.opts.SecretData)
			if err != nil {
				return nil, err
			}
			spec.Data, hashed = data, data
			c.red.add(string(data))
		}
		if s.TemplateDriver != "" {
			spec.Templating = &swarm.Driver{Name: s.TemplateDriver}
		}
		c.secretNames[key] = contentName(c.opts.NameKey, cmp.Or(s.Name, c.scope(key)), hashed)
		spec.Annotations = swarm.Annotations{Name: c.secretNames[key], Labels: c.objectLabels(s.Labels, key)}
		out = append(out, Secret{Key: key, Name: spec.Name, Spec: spec})
	}
	return out, nil
}

func (c *converter) configs() ([]Config, error) {
	c.configNames = map[string]string{}
	var out []Config
	for _, key := range sortedKeys(c.p.Configs) {
		s := c.p.Configs[key]
		if s.External {
			c.configNames[key] = cmp.Or(s.Name, key)
			out = append(out, Config{Key: key, Name: c.configNames[key], External: true})
			continue
		}
		data, err := c.objectData("config", key, types.FileObjectConfig(s), c.opts.ConfigData)
		if err != nil {
			return nil, err
		}
		c.configNames[key] = contentName(c.opts.NameKey, cmp.Or(s.Name, c.scope(key)), data)
		spec := swarm.ConfigSpec{
			Annotations: swarm.Annotations{Name: c.configNames[key], Labels: c.objectLabels(s.Labels, key)},
			Data:        data,
		}
		if s.TemplateDriver != "" {
			spec.Templating = &swarm.Driver{Name: s.TemplateDriver}
		}
		out = append(out, Config{Key: key, Name: spec.Name, Spec: spec})
	}
	return out, nil
}

func (c *converter) objectLabels(in map[string]string, key string) map[string]string {
	out := c.labels(in)
	out[labelComposeKey] = key
	return out
}

// contentName appends a hash of the data: Swarm secrets and configs cannot
// change, so new data must be a new object, which also rolls the services.
// The hash is HMAC-SHA256 with key (plain SHA-256 without one), cut to 10 hex
// digits: the name stays within Swarm's 64 characters as before.
func contentName(key []byte, name string, data []byte) string {
	return name + "-" + hex.EncodeToString(keyedSum(key, data))[:10]
}

// keyedSum is HMAC-SHA256(key, data), or SHA-256(data) when key is empty.
func keyedSum(key, data []byte) []byte {
	if len(key) == 0 {
		sum := sha256.Sum256(data)
		return sum[:]
	}
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// objectData finds a secret's or config's data: the caller's data first,
// then the compose file's content:, environment: or file:.
func (c *converter) objectData(kind, key string, obj types.FileObjectConfig, given map[string][]byte) ([]byte, error) {
	if d, ok := given[key]; ok {
		return d, nil
	}
	at := []string{kind + "s", key}
	switch {
	case obj.Environment != "":
		v, ok := c.opts.Variables[obj.Environment]
		if !ok {
			return nil, errorAt(c.srcs, append(at, "environment"), "%s %q: variable %q is not set", kind, key, obj.Environment)
		}
		return []byte(v), nil
	case obj.Content != "":
		return []byte(obj.Content), nil
	case obj.File != "":
		data, err := c.readFile(obj.File)
		if err != nil {
			return nil, errorAt(c.srcs, append(at, "file"), "%s %q: %v", kind, key, err)
		}
		return data, nil
	}
	return nil, errorAt(c.srcs, at, "%s %q has no data: provide it (%sData) or declare file, content, environment or external", kind, key, map[string]string{"secret": "Secret", "config": "Config"}[kind])
}

func (c *converter) readFile(path string) ([]byte, error) {
	if c.opts.ReadFile == nil {
		return nil, fmt.Errorf("cannot read file %q: reading files is not enabled", path)
	}
	data, err := c.opts.ReadFile(path)
	if c.reads == nil {
		c.reads = map[string]fileRead{}
	}
	c.reads[path] = fileRead{ok: err == nil, sum: sha256.Sum256(data)}
	if err != nil {
		return nil, fmt.Errorf("cannot read file %q: %w", path, err)
	}
	return data, nil
}

// fileRead is the outcome of one ReadFile call: an optional env_file that
// could not be read matters as much as the content of one that could.
type fileRead struct {
	ok  bool
	sum [32]byte
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	n := 1
	for i := 1; i < len(out); i++ {
		if out[i] != out[n-1] {
			out[n] = out[i]
			n++
		}
	}
	return out[:n]
}
