// Package compose turns an ordered list of compose files into the Swarm
// objects of one stack, the way `docker stack deploy -c a.yml -c b.yml <stack>`
// would create them, without talking to a Docker engine.
//
// Loading, interpolation and merging are compose-go's (compose-spec rules);
// the conversion to Swarm specs follows docker/cli's stack deploy. The result
// is a pure function of the inputs: the same files, variables and secret data
// always give byte-identical specs, hashes and revision, so a controller can
// compare revisions instead of specs.
//
// What is deliberately different from `docker stack deploy`:
//
//   - Secrets and configs created by the stack are named
//     `<name>-<first 10 hex digits of sha256(data)>`, where <name> is the name
//     stack deploy would use (`<stack>_<key>` or the explicit `name:`).
//     Swarm secrets and configs are immutable, so stack deploy fails (or
//     silently keeps stale data) when their content changes; a content-derived
//     name creates a new object and rolls the services that use it. Each such
//     object also carries the label swarm.swarmops.io/compose-key=<key>.
//   - Nothing is read from the machine: no OS environment, no files. Variables
//     come from Options.Variables, secret and config data from
//     Options.SecretData/ConfigData or Options.ReadFile. Relative bind-mount
//     sources cannot be resolved against a working directory and are errors.
//   - Replicated services get an explicit replica count of 1 when the compose
//     file gives none (Swarm's default, made visible in the spec).
//   - A secret reference without target gets /run/secrets/<key> (compose-go's
//     default; Swarm puts a bare <key> in the same place).
//   - Extra hosts are sorted (compose-go keeps them in a map); mounts are
//     sorted by target, environment, ports, networks, secrets and configs are
//     sorted, so the order of map-like input never changes a spec.
//   - Also converted although stack deploy drops them: ipam gateway, ip_range,
//     aux_addresses and options; enable_ipv4/enable_ipv6; dns_opt; tmpfs mode.
//   - Keys Swarm cannot honour produce warnings (Stack.Warnings) instead of
//     stack deploy's stderr output; keys stack deploy forbids (extends,
//     volumes_from, mem_limit, ...) and `include` are errors. Two files
//     declaring different `version:` values are an error, as in stack deploy,
//     but a file without `version:` never conflicts. Unset variables are
//     replaced by an empty string with a warning, as in stack deploy;
//     `${VAR:?message}` is an error.
//   - compose-go logs through the global logrus logger. Render captures those
//     messages into Stack.Warnings; while it loads, the standard logger's
//     output and hooks are swapped out, so messages other goroutines log
//     through logrus at that very moment are lost.
//
// External networks are referenced by name only: whether they exist and are
// swarm-scoped can only be checked against an engine, by the caller.
package compose
