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
//     `<name>-<first 10 hex digits of HMAC-SHA256(Options.NameKey, data)>`,
//     where <name> is the name stack deploy would use (`<stack>_<key>` or the
//     explicit `name:`). Swarm secrets and configs are immutable, so stack
//     deploy fails (or silently keeps stale data) when their content changes;
//     a content-derived name creates a new object and rolls the services that
//     use it. Each such object also carries the label
//     swarm.swarmops.io/compose-key=<key>. The hash is keyed because anyone
//     who can `docker secret ls` sees the names: with a plain hash they could
//     confirm a guess of a secret offline. The same key and data always give
//     the same name. Stack.Revision, which covers the secret data, is keyed
//     the same way. The operator always passes its key; with an empty
//     NameKey (the `swarm-operator render` CLI unless given the key) the
//     hash is plain SHA-256, which anyone can recompute.
//   - Nothing is read from the machine: no OS environment, no files. Variables
//     come from Options.Variables, secret and config data from
//     Options.SecretData/ConfigData or Options.ReadFile. Relative bind-mount
//     sources cannot be resolved against a working directory and are errors.
//   - Replicated services get an explicit replica count of 1 when the compose
//     file gives none (Swarm's default, made visible in the spec).
//   - A secret reference without target gets /run/secrets/<key> (compose-go's
//     default; Swarm puts a bare <key> in the same place), a config
//     reference /<key> (where Swarm puts a bare <key> too).
//   - Extra hosts are sorted (compose-go keeps them in a map); mounts are
//     sorted by target, environment, ports, networks, secrets and configs are
//     sorted, so the order of map-like input never changes a spec.
//   - A short-syntax volume target loses a trailing slash (compose-go
//     cleans "/etc/configs/" to "/etc/configs"); stack deploy keeps it as
//     written. Swarm mounts both at the same place, but a write that changes
//     the spelling replaces the tasks, so the operator keeps the running
//     service's spelling when it updates one (the same for list order, image
//     names without :latest and relative secret and config targets).
//   - Also converted although stack deploy drops them: ipam gateway, ip_range,
//     aux_addresses and options; enable_ipv4/enable_ipv6; dns_opt; tmpfs mode;
//     oom_score_adj (stack deploy means to convert it since 27.1, but its
//     loader never reads the key: the field lacks its mapstructure tag).
//   - Several files are merged by the compose specification's rules, which
//     differ from stack deploy's own merge where a later file repeats a list
//     entry. Stack deploy replaces the earlier port with the same published
//     port (keeping only one of the ports without a published port), the
//     earlier secret or config reference with the same source, and the
//     service's aliases on a network, and it keeps duplicate extra hosts.
//     Here ports and aliases are added, a reference is added unless it has
//     the same target, and duplicates are dropped.
//   - Ports Swarm refuses are errors naming the file: a published port
//     mapped twice (same number and protocol; with several files, that is
//     how remapping a published port ends) and ingress-mode ports on an
//     endpoint_mode dnsrr service. Stack deploy leaves both to Swarm.
//   - Keys Swarm cannot honour produce warnings (Stack.Warnings) instead of
//     stack deploy's stderr output; keys stack deploy forbids (extends,
//     volumes_from, mem_limit, ...) and `include` are errors. Two files
//     declaring different `version:` values are an error, as in stack deploy,
//     but a file without `version:` never conflicts. Unset variables are
//     replaced by an empty string with a warning, as in stack deploy, that
//     names the variable and the file and line using it;
//     `${VAR:?message}` is an error.
//   - compose-go logs through the global logrus logger. Render captures those
//     messages into Stack.Warnings; while it loads, the standard logger's
//     output and hooks are swapped out, so messages other goroutines log
//     through logrus at that very moment are lost.
//
// Limits keep a hostile or mistaken input from taking the operator down (each was
// measured to cost seconds of CPU or gigabytes without it; hostile_test.go holds the
// corpus). Each breach is an *Error naming the file:
//
//   - a file has at most MaxFileSize bytes (1 MiB, what a ConfigMap holds);
//   - YAML aliases expand a document to at most 8 MiB ("billion laughs", or one
//     long value aliased thousands of times);
//   - ${...} nests at most 32 deep in one value;
//   - all files together hold at most 32 YAML documents, 100,000 YAML nodes
//     (aliases expanded) and 1000 services;
//   - a service has at most MaxReplicas replicas (a count too large for an int
//     wraps around while parsing and is caught too), memory sizes that overflow
//     are errors, ports lie between 1 and 65535, and service names are what
//     Swarm accepts (at most 63 letters, digits, '-' and '_'). Stack deploy
//     leaves these to Swarm;
//   - an error message is cut at 1 KiB: compose-go quotes offending values.
//
// Errors and warnings never quote secret values: they reach status conditions,
// events and logs. Render, Cache.Render and MergedYAML replace with
// "[redacted]" every occurrence of the value of a variable named in
// Options.SensitiveVariables (the controller names those read from a
// Kubernetes Secret) and of the data of every secret (Options.SecretData, or
// what a secret's file:, environment: or content: holds), written as it is,
// trimmed, line by line or quoted as Go (%q, %+q) and JSON quote it; quoted
// text that is a piece of such a value (a parser may quote only what it read)
// is redacted too. Values shorter than 4 characters are not redacted: that
// would cut "1" or "yes" out of every message, and so short a value is no
// secret. The file, line and field stay in the message.
//
// differential_test.go deploys a corpus of compose files with the real
// `docker stack deploy` and with Render's specs onto a sandbox Swarm and
// compares what Swarm stores: the differences above are the only ones it
// allows.
//
// External networks are referenced by name only: whether they exist and are
// swarm-scoped can only be checked against an engine, by the caller.
package compose
