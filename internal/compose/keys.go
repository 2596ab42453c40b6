package compose

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Service keys the conversion honours. Every other service key (x-* aside)
// is either forbidden (an error, as in stack deploy) or ignored with a
// warning, so a user learns that e.g. `build` or `privileged` has no effect.
var convertedServiceKeys = set(
	"image", "command", "entrypoint", "environment", "env_file", "labels",
	"hostname", "extra_hosts", "dns", "dns_search", "dns_opt", "working_dir",
	"user", "healthcheck", "stop_grace_period", "stop_signal", "tty",
	"stdin_open", "read_only", "init", "sysctls", "cap_add", "cap_drop",
	"ulimits", "logging", "networks", "ports", "volumes", "secrets", "configs",
	"deploy", "isolation", "oom_score_adj", "credential_spec",
	// restart is the fallback for deploy.restart_policy, as in stack deploy
	"restart",
)

// forbiddenServiceKeys are refused by stack deploy.
var forbiddenServiceKeys = map[string]string{
	"extends":       "extends is not supported by docker stack deploy",
	"volume_driver": "define a volume in the top-level volumes with a driver instead",
	"volumes_from":  "share a volume through the top-level volumes instead",
	"cpu_quota":     "set resource limits with deploy.resources",
	"cpu_shares":    "set resource limits with deploy.resources",
	"cpuset":        "set resource limits with deploy.resources",
	"mem_limit":     "set resource limits with deploy.resources",
	"memswap_limit": "set resource limits with deploy.resources",
}

var convertedDeployKeys = map[string]map[string]bool{
	"":                       set("mode", "replicas", "labels", "update_config", "rollback_config", "resources", "restart_policy", "placement", "endpoint_mode"),
	"resources":              set("limits", "reservations"),
	"resources.limits":       set("cpus", "memory", "pids"),
	"resources.reservations": set("cpus", "memory", "generic_resources"),
}

var topLevelKeys = set("version", "name", "services", "networks", "volumes", "secrets", "configs")

func set(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, k := range s {
		m[k] = true
	}
	return m
}

// scan checks one file before compose-go sees it: forbidden and ignored keys
// (with their line, which the merged model no longer has) and `version`.
func (s *source) scan(warn func(string)) (version string, err error) {
	for _, doc := range s.docs {
		var root *yaml.Node
		if len(doc.Content) > 0 {
			root = deref(doc.Content[0])
		}
		if root == nil || root.Kind != yaml.MappingNode {
			continue // compose-go reports the shape error
		}
		keys(root, func(key string, k, v *yaml.Node) {
			if err != nil || strings.HasPrefix(key, "x-") {
				return
			}
			switch {
			case key == "version":
				version = v.Value
			case key == "include":
				err = &Error{File: s.name, Line: k.Line, Msg: "include is not supported by docker stack deploy; list the files in order instead"}
			case key == "services":
				keys(v, func(name string, _, svc *yaml.Node) {
					if err == nil {
						err = s.scanService(name, svc, warn)
					}
				})
			case key == "name":
				// the stack name wins, as with `docker stack deploy <stack>`
			case !topLevelKeys[key]:
				warn(fmt.Sprintf("top-level key %q is ignored by Swarm", key))
			}
		})
		if err != nil {
			return "", err
		}
	}
	return version, nil
}

func (s *source) scanService(name string, svc *yaml.Node, warn func(string)) error {
	var err error
	keys(svc, func(key string, k, v *yaml.Node) {
		switch {
		case err != nil || strings.HasPrefix(key, "x-") || convertedServiceKeys[key] && key != "deploy" || key == "depends_on" && s.ordered:
		case forbiddenServiceKeys[key] != "":
			err = &Error{File: s.name, Line: k.Line, Msg: fmt.Sprintf("service %q: key %q is not supported: %s", name, key, forbiddenServiceKeys[key])}
		case key == "deploy":
			scanDeploy(name, "", v, warn)
		default:
			warn(fmt.Sprintf("service %q: key %q is ignored by Swarm", name, key))
		}
	})
	return err
}

func scanDeploy(service, prefix string, n *yaml.Node, warn func(string)) {
	known := convertedDeployKeys[prefix]
	keys(n, func(key string, _, v *yaml.Node) {
		path := strings.TrimPrefix(prefix+"."+key, ".")
		switch {
		case strings.HasPrefix(key, "x-"):
		case !known[key]:
			warn(fmt.Sprintf("service %q: key %q is ignored by Swarm", service, "deploy."+path))
		case convertedDeployKeys[path] != nil:
			scanDeploy(service, path, v, warn)
		}
	})
}
