package compose

import (
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// order reads the services' depends_on for an ordered release: it fills in each
// service's DependsOn and returns the waves. Kahn's layering is a few lines; a graph
// library would add a dependency for less than it saves. What an ordered release cannot
// honour is refused with the file and line of the key: a cycle, a dependency on a
// service not in the stack (skipped with a warning when required: false, as Compose
// only warns then), service_completed_successfully on a service that never completes
// (not a job), and restart: true (restarting dependents has no Swarm counterpart the
// operator writes).
func (c *converter) order(svcs []Service) ([][]string, error) {
	byKey := map[string]*Service{}
	for i := range svcs {
		byKey[svcs[i].Key] = &svcs[i]
	}
	deps := map[string][]string{} // service name → names it waits on
	for _, key := range sortedKeys(c.p.Services) {
		svc := byKey[key]
		for _, dep := range sortedKeys(c.p.Services[key].DependsOn) {
			d := c.p.Services[key].DependsOn[dep]
			at := []string{"services", key, "depends_on", dep}
			if d.Restart {
				return nil, errorAt(c.srcs, append(at, "restart"), "service %q: depends_on %q: restart: true is not supported with updateOrder DependsOn (remove it; dependents are written after their dependencies anyway)", key, dep)
			}
			target, ok := byKey[dep]
			if !ok {
				if !d.Required {
					c.warn("service %q: depends_on %q (required: false) is not in the stack; ignored", key, dep)
					continue
				}
				return nil, errorAt(c.srcs, at, "service %q depends on service %q, which is not in the stack", key, dep)
			}
			cond := d.Condition
			if cond == "" {
				cond = types.ServiceConditionStarted
			}
			switch cond {
			case types.ServiceConditionStarted, types.ServiceConditionHealthy:
			case types.ServiceConditionCompletedSuccessfully:
				if m := target.Spec.Mode; m.ReplicatedJob == nil && m.GlobalJob == nil {
					return nil, errorAt(c.srcs, append(at, "condition"), "service %q depends on service %q with condition service_completed_successfully, but %q is not a job (deploy.mode replicated-job or global-job): it never completes", key, dep, dep)
				}
			default:
				return nil, errorAt(c.srcs, append(at, "condition"), "service %q: depends_on %q: unknown condition %q (use service_started, service_healthy or service_completed_successfully)", key, dep, cond)
			}
			svc.DependsOn = append(svc.DependsOn, Dependency{Service: target.Name, Condition: cond})
			deps[svc.Name] = append(deps[svc.Name], target.Name)
		}
	}
	waves, cycle := layers(svcs, deps)
	if len(cycle) > 0 {
		key := strings.TrimPrefix(cycle[0], c.stack+"_")
		return nil, errorAt(c.srcs, []string{"services", key, "depends_on"}, "depends_on forms a cycle among services %s: no order can write them", quoteKeys(cycle, c.stack))
	}
	return waves, nil
}

// layers puts each service in the wave after its latest dependency. Services left
// over are on a cycle (or wait on one).
func layers(svcs []Service, deps map[string][]string) (waves [][]string, cycle []string) {
	wave := map[string]int{}
	left := len(svcs)
	for left > 0 {
		var next []string
		for _, s := range svcs {
			if _, done := wave[s.Name]; done {
				continue
			}
			// wave is filled in after the loop: a dependency in this wave has none yet.
			if !slices.ContainsFunc(deps[s.Name], func(d string) bool { _, ok := wave[d]; return !ok }) {
				next = append(next, s.Name)
			}
		}
		if len(next) == 0 {
			return waves, onCycle(svcs, deps, wave)
		}
		for _, n := range next {
			wave[n] = len(waves)
		}
		waves = append(waves, next)
		left -= len(next)
	}
	return waves, nil
}

// onCycle narrows the services left without a wave to those on a cycle: a service
// that only waits on one, and that none of the others waits on, is dropped, until none
// is left to drop.
func onCycle(svcs []Service, deps map[string][]string, placed map[string]int) []string {
	left := map[string]bool{}
	for _, s := range svcs {
		if _, ok := placed[s.Name]; !ok {
			left[s.Name] = true
		}
	}
	for {
		needed := map[string]bool{}
		for n := range left {
			for _, d := range deps[n] {
				needed[d] = true
			}
		}
		dropped := false
		for n := range left {
			if !needed[n] {
				delete(left, n)
				dropped = true
			}
		}
		if !dropped {
			return sortedKeys(left)
		}
	}
}

func quoteKeys(names []string, stack string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", strings.TrimPrefix(n, stack+"_"))
	}
	return strings.Join(out, ", ")
}
