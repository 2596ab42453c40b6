package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkUnrelatedObjects: the operator's memory with many Secrets and ConfigMaps in
// the cluster that no SwarmStack or SwarmCluster references (Helm keeps its releases in
// Secrets). They are watched as metadata only, so the operator's heap must not grow with
// their data. BENCH_UNRELATED (default 10000) of each, 16 KiB of data apiece.
func BenchmarkUnrelatedObjects(b *testing.B) {
	getBed(b)
	load := loadAvg()
	n := envInt("BENCH_UNRELATED", 10000)
	ctx := context.Background()
	ns, err := bed.Namespace(ctx, "bench-unrelated")
	if err != nil {
		b.Fatal(err)
	}
	stopOperator()
	heapOff, rssOff := liveHeap(), rss()
	payload := strings.Repeat("x", 16*1024)
	t0 := time.Now()
	if err := inParallel(8, 0, n, func(i int) error {
		meta := metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("unrelated-%05d", i)}
		if err := bed.Client.Create(ctx, &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"data": []byte(payload)}}); err != nil {
			return err
		}
		return bed.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"data": payload}})
	}); err != nil {
		b.Fatal(err)
	}
	created := time.Since(t0)
	b.Cleanup(func() {
		_ = bed.Client.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns))
		_ = bed.Client.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace(ns))
	})
	b.ResetTimer()
	if err := startOperator(); err != nil {
		b.Fatal(err)
	}
	// The informers list everything at start; give them time to fill, then measure.
	time.Sleep(15 * time.Second)
	heapOn, rssOn := liveHeap(), rss()
	b.StopTimer()
	b.ReportMetric(float64(int64(heapOn)-int64(heapOff))/mib, "operator-heap-MiB")
	b.ReportMetric(float64(rssOn)/mib, "process-rss-MiB")
	reportLoad(b, load)
	logBoth(b, "%d Secrets and %d ConfigMaps of 16 KiB no stack references (created in %s): Go heap in use %.1f MiB with the operator stopped, %.1f MiB running (operator %.1f MiB); RSS %.1f MiB stopped, %.1f MiB running",
		n, n, created.Round(time.Second), float64(heapOff)/mib, float64(heapOn)/mib, float64(int64(heapOn)-int64(heapOff))/mib, float64(rssOff)/mib, float64(rssOn)/mib)
}
