package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestResetDropsEverySeries(t *testing.T) {
	RolloutsStarted.WithLabelValues("apps", "numbers").Inc()
	ServiceUpdateState.WithLabelValues("apps", "numbers", "numbers_api", "updating").Set(1)
	RolloutDuration.WithLabelValues("Completed").Observe(3)
	Reset()
	for _, v := range vectors {
		if n := testutil.CollectAndCount(v); n != 0 {
			t.Errorf("%d series left after Reset", n)
		}
	}
}
