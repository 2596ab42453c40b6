package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// requestCount is the operator's Docker API requests so far, as counted by the
// instrumented transport of internal/swarm (metric swarm_operator_docker_requests_total).
type requestCount struct{ reads, writes float64 }

func (c requestCount) total() float64 { return c.reads + c.writes }

func (c requestCount) String() string {
	if c.writes == 0 {
		return fmt.Sprintf("%.0f", c.reads)
	}
	return fmt.Sprintf("%.0f+%.0fw", c.reads, c.writes)
}

func (c requestCount) minus(o requestCount) requestCount {
	return requestCount{c.reads - o.reads, c.writes - o.writes}
}

// gather passes each counter or gauge of the metric family `name` whose labels include
// all of want to add, with its labels (controller-runtime's registry, where the
// operator's metrics are registered too).
func gather(name string, want map[string]string, add func(labels map[string]string, v float64)) {
	fams, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				add(labels, m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				add(labels, m.GetGauge().GetValue())
			case m.GetHistogram() != nil:
				// Histograms give their sum under the family's name, their count under
				// name+"_count" (see reconcileTime).
				labels["__count"] = strconv.FormatUint(m.GetHistogram().GetSampleCount(), 10)
				add(labels, m.GetHistogram().GetSampleSum())
			}
		}
	}
}

func dockerRequests() requestCount {
	var c requestCount
	gather("swarm_operator_docker_requests_total", nil, func(l map[string]string, v float64) {
		// GET and HEAD (ping) only read; POST, PUT and DELETE write.
		if l["method"] == "GET" || l["method"] == "HEAD" {
			c.reads += v
		} else {
			c.writes += v
		}
	})
	return c
}

// dockerRequestsByKind is the operator's Docker requests so far by method and kind of
// object ("GET services", "POST networks", ...).
func dockerRequestsByKind() map[string]float64 {
	out := map[string]float64{}
	gather("swarm_operator_docker_requests_total", nil, func(l map[string]string, v float64) {
		out[l["method"]+" "+l["kind"]] += v
	})
	return out
}

// requestsSince says, by method and kind, how many requests were made since before.
func requestsSince(before map[string]float64) string {
	var parts []string
	for k, v := range dockerRequestsByKind() {
		if d := v - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, d))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func sum(name string, want map[string]string) float64 {
	var total float64
	gather(name, want, func(_ map[string]string, v float64) { total += v })
	return total
}

// stackReconciles is how many reconciles the SwarmStack controller finished (any result).
func stackReconciles() float64 {
	return sum("controller_runtime_reconcile_total", map[string]string{"controller": "swarmstack"})
}

// reconcileTime is the SwarmStack controller's total reconcile time in seconds and the
// number of reconciles it covers (controller_runtime_reconcile_time_seconds).
func reconcileTime() (seconds, count float64) {
	gather("controller_runtime_reconcile_time_seconds", map[string]string{"controller": "swarmstack"}, func(l map[string]string, v float64) {
		seconds += v
		n, _ := strconv.ParseFloat(l["__count"], 64)
		count += n
	})
	return seconds, count
}

// stackQueueIdle is true when the SwarmStack controller has nothing queued or running.
func stackQueueIdle() bool {
	return sum("workqueue_depth", map[string]string{"name": "swarmstack"}) == 0 &&
		sum("controller_runtime_active_workers", map[string]string{"controller": "swarmstack"}) == 0
}

// liveHeap is the Go heap in use after two full collections: live objects only.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// rss is the process's resident set size (VmRSS) in bytes, or 0.
func rss() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

const mib = 1 << 20

// apiRequests counts this process's requests to the API server so far, by HTTP method
// (client-go's rest_client_requests_total).
func apiRequests() map[string]float64 {
	out := map[string]float64{}
	gather("rest_client_requests_total", nil, func(l map[string]string, v float64) { out[l["method"]] += v })
	return out
}

// childProcesses lists the pids of this process's children.
func childProcesses() []int {
	var out []int
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range dirs {
		f := procStat(path)
		if len(f) > 2 && f[2] == self {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// procStat is the fields of a /proc/<pid>/stat, the command name without its
// parentheses (which may hold spaces) first: name, state, ppid, ..., utime [12],
// stime [13].
func procStat(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nil
	}
	return append([]string{s[open+1 : end]}, strings.Fields(s[end+1:])...)
}

// cpuTimes is CPU time in seconds (user + system) of this process ("self": the
// operator, the benchmark's client, in-memory swarms) and of others by command name
// (kube-apiserver, etcd, dockerd).
type cpuTimes map[string]float64

func (c cpuTimes) minus(o cpuTimes) cpuTimes {
	out := cpuTimes{}
	for k, v := range c {
		out[k] = v - o[k]
	}
	return out
}

// String is this process's, the API server's and etcd's, for tables.
func (c cpuTimes) String() string {
	return fmt.Sprintf("%.1f / %.1f / %.1f", c["self"], c["kube-apiserver"], c["etcd"])
}

// all lists every process's, largest first.
func (c cpuTimes) all() string {
	names := make([]string, 0, len(c))
	for name := range c {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return c[names[i]] > c[names[j]] })
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %.1f", name, c[name])
	}
	return strings.Join(parts, ", ")
}

// cpuSeconds reads the CPU time so far of this process and of the given ones.
func cpuSeconds(pids []int) cpuTimes {
	const ticks = 100 // USER_HZ on Linux
	out := cpuTimes{}
	add := func(name, path string) {
		f := procStat(path)
		if len(f) < 14 {
			return
		}
		u, _ := strconv.ParseFloat(f[12], 64)
		st, _ := strconv.ParseFloat(f[13], 64)
		if name == "" {
			name = f[0]
		}
		out[name] += (u + st) / ticks
	}
	add("self", "/proc/self/stat")
	for _, pid := range pids {
		add("", fmt.Sprintf("/proc/%d/stat", pid))
	}
	return out
}

// apiServerRequests is what the API server served so far (all clients: the operator,
// the benchmark, the API server's own controllers), by verb and resource, from its
// apiserver_request_total.
func apiServerRequests(ctx context.Context, cfg *rest.Config) map[string]float64 {
	out := map[string]float64{}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return out
	}
	raw, err := c.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return out
	}
	label := func(line, name string) string {
		_, rest, ok := strings.Cut(line, name+`="`)
		if !ok {
			return ""
		}
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		key := label(line, "verb") + " " + label(line, "resource")
		if sub := label(line, "subresource"); sub != "" {
			key += "/" + sub
		}
		out[key] += v
	}
	return out
}

// apiServerRequestsSince says, by verb and resource, what the API server served since
// before, the largest first.
func apiServerRequestsSince(ctx context.Context, cfg *rest.Config, before map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var rows []kv
	for k, v := range apiServerRequests(ctx, cfg) {
		if d := v - before[k]; d >= 1 {
			rows = append(rows, kv{k, d})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].v > rows[j].v })
	var parts []string
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%s %.0f", r.k, r.v))
	}
	return strings.Join(parts, ", ")
}

// apiServerProfile writes a CPU profile of the API server, taken over d, to path (its
// /debug/pprof, on by default): what its share of a run went to.
func apiServerProfile(ctx context.Context, cfg *rest.Config, d time.Duration, path string) error {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	raw, err := c.RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + time.Minute).DoRaw(ctx)
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}
