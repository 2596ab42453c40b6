package argocd

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// kstatus (what Flux's wait and healthChecks, and kubectl's --wait tools built on
// cli-utils, compute) on the same fixtures as the Argo CD health checks: the operator's
// conditions follow the kstatus contract (Ready always; Reconciling and Stalled only
// while true), so the generic rules read them right without a kind-specific reader.
func TestKstatusReadsOurStatuses(t *testing.T) {
	cases := map[string]status.Status{
		// SwarmStack
		"SwarmStack/testdata/progressing.yaml":       status.InProgressStatus,
		"SwarmStack/testdata/frozen.yaml":            status.InProgressStatus,
		"SwarmStack/testdata/not-observed.yaml":      status.InProgressStatus,
		"SwarmStack/testdata/completed.yaml":         status.CurrentStatus,
		"SwarmStack/testdata/rolled-back.yaml":       status.FailedStatus,
		"SwarmStack/testdata/deadline-exceeded.yaml": status.FailedStatus,
		"SwarmStack/testdata/compose-invalid.yaml":   status.FailedStatus,
		"SwarmStack/testdata/deleting.yaml":          status.TerminatingStatus,
		// Ready=False without Stalled: the operator is still at it (kstatus waits).
		"SwarmStack/testdata/cluster-not-ready.yaml": status.InProgressStatus,
		// SwarmCluster
		"SwarmCluster/testdata/connected.yaml":     status.CurrentStatus,
		"SwarmCluster/testdata/even-managers.yaml": status.CurrentStatus,
		"SwarmCluster/testdata/unreachable.yaml":   status.InProgressStatus,
		// SwarmNodeMaintenance
		"SwarmNodeMaintenance/testdata/draining.yaml":       status.InProgressStatus,
		"SwarmNodeMaintenance/testdata/restoring.yaml":      status.InProgressStatus,
		"SwarmNodeMaintenance/testdata/in-maintenance.yaml": status.CurrentStatus,
		"SwarmNodeMaintenance/testdata/completed.yaml":      status.CurrentStatus,
		"SwarmNodeMaintenance/testdata/failed.yaml":         status.FailedStatus,
		"SwarmNodeMaintenance/testdata/blocked.yaml":        status.InProgressStatus,
		// SwarmStackSet: a wait for approval is a release in progress, a halt a failure.
		"SwarmStackSet/testdata/progressing.yaml":         status.InProgressStatus,
		"SwarmStackSet/testdata/soaking.yaml":             status.InProgressStatus,
		"SwarmStackSet/testdata/awaiting-approval.yaml":   status.InProgressStatus,
		"SwarmStackSet/testdata/completed.yaml":           status.CurrentStatus,
		"SwarmStackSet/testdata/completed-unmatched.yaml": status.CurrentStatus,
		"SwarmStackSet/testdata/halted.yaml":              status.FailedStatus,
		"SwarmStackSet/testdata/not-observed.yaml":        status.InProgressStatus,
	}
	for path, want := range cases {
		t.Run(path, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(group, path))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := yaml.YAMLToJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			// As a client reads it: integers as int64, which kstatus expects.
			var u unstructured.Unstructured
			if err := u.UnmarshalJSON(raw); err != nil {
				t.Fatal(err)
			}
			res, err := status.Compute(&u)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != want {
				t.Fatalf("kstatus %s (%s), want %s", res.Status, res.Message, want)
			}
		})
	}
}

// A SwarmCluster that a new generation has not been observed for is InProgress, and one
// whose credentials are wrong (Stalled) is Failed, for each kind the same rule.
func TestKstatusGenerationAndStalledForEveryKind(t *testing.T) {
	for _, kind := range []string{"SwarmStack", "SwarmCluster", "SwarmNodeMaintenance", "SwarmStackSet"} {
		obj := map[string]any{
			"apiVersion": "swarm.swarmops.io/v1alpha1", "kind": kind,
			"metadata": map[string]any{"name": "x", "namespace": "apps", "generation": int64(2)},
			"status": map[string]any{"observedGeneration": int64(1), "conditions": []any{
				map[string]any{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok"}}},
		}
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil || res.Status != status.InProgressStatus {
			t.Fatalf("%s with an unobserved generation: %v %v", kind, res, err)
		}
		_ = unstructured.SetNestedField(obj, int64(2), "status", "observedGeneration")
		_ = unstructured.SetNestedSlice(obj, []any{
			map[string]any{"type": "Ready", "status": "False", "reason": "TLSError", "message": "bad certificate"},
			map[string]any{"type": "Stalled", "status": "True", "reason": "TLSError", "message": "bad certificate"},
		}, "status", "conditions")
		res, err = status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil || res.Status != status.FailedStatus {
			t.Fatalf("%s stalled: %v %v", kind, res, err)
		}
	}
}
