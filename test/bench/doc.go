// Package bench holds the operator's end-to-end benchmarks (issue 8): reaction time to a
// spec change, converge time against `docker stack deploy --detach=false`, Docker
// requests per no-op reconcile, and resync time and memory with 200 stacks. They run
// against a real control plane (envtest) and a real sandbox Swarm, started once and only
// when a benchmark is selected: `go test ./test/bench` runs the cheap unit tests of the
// helpers and nothing else. BenchmarkSimulation (issue 18) needs envtest only: its
// swarms are in memory (internal/memswarm behind controllers.Options.Swarms), so it runs
// thousands of stacks without root. Run them with `make bench`; docs/benchmarks.md has
// the figures.
package bench
