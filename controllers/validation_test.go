package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// TestAdmissionRejectsBadSpecs proves that `kubectl apply` itself refuses what the CRD
// schema and CEL rules forbid, with a message that says what to fix.
func TestAdmissionRejectsBadSpecs(t *testing.T) {
	ns, _ := newNamespace(t, "admission")
	inline := "services: {}"
	goodStack := func() *swarmv1.SwarmStack {
		return &swarmv1.SwarmStack{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "s-"},
			Spec: swarmv1.SwarmStackSpec{
				ClusterRef: swarmv1.LocalObjectReference{Name: "sandbox"},
				SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
					Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "a.yml", Inline: &inline}}},
				},
			},
		}
	}
	goodMaintenance := func() *swarmv1.SwarmNodeMaintenance {
		return &swarmv1.SwarmNodeMaintenance{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "m-"},
			Spec: swarmv1.SwarmNodeMaintenanceSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "sandbox"}, Nodes: []string{"nowhere"},
				Window: &swarmv1.MaintenanceWindow{Schedule: "0 2 * * SUN", Duration: metav1.Duration{Duration: time.Hour}}},
		}
	}
	cases := map[string]struct {
		obj  client.Object
		want string
	}{
		"a compose file with both inline and configMapRef": {func() client.Object {
			s := goodStack()
			s.Spec.Compose.Files[0].ConfigMapRef = &swarmv1.KeySelector{Name: "x", Key: "y"}
			return s
		}(), "set exactly one of inline or configMapRef"},
		"a compose file with neither": {func() client.Object {
			s := goodStack()
			s.Spec.Compose.Files[0].Inline = nil
			return s
		}(), "set exactly one of inline or configMapRef"},
		"an unknown onProgressDeadline": {func() client.Object {
			s := goodStack()
			s.Spec.OnProgressDeadline = "Panic"
			return s
		}(), "Unsupported value"},
		"a zero progress deadline": {func() client.Object {
			s := goodStack()
			s.Spec.ProgressDeadlineSeconds = ptr.To[int32](0)
			return s
		}(), "progressDeadlineSeconds"},
		"a negative interval": {func() client.Object {
			s := goodStack()
			s.Spec.Interval = &metav1.Duration{Duration: -time.Minute}
			return s
		}(), "interval must be a positive duration"},
		"a cluster without endpoints": {&swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"}},
			"endpoints"},
		"an endpoint that is no URL": {&swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-url"},
			Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"10.0.0.1:2376"}}}, "should match"},
		"a security level that is none": {&swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-level"},
			Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://10.0.0.1:2376"}, SecurityLevel: "Privileged"}}, "Unsupported value"},
		"a window with both start and schedule": {func() client.Object {
			m := goodMaintenance()
			m.Spec.Window.Start = &metav1.Time{Time: time.Now()}
			return m
		}(), "set start or schedule, not both"},
		"a time zone without a schedule": {func() client.Object {
			m := goodMaintenance()
			m.Spec.Window.Schedule = ""
			m.Spec.Window.Start = &metav1.Time{Time: time.Now()}
			m.Spec.Window.TimeZone = "Asia/Seoul"
			return m
		}(), "timeZone applies only to schedule"},
		"a window without a duration": {func() client.Object {
			m := goodMaintenance()
			m.Spec.Window.Duration = metav1.Duration{}
			return m
		}(), "duration must be positive"},
		"no nodes and no selector": {func() client.Object {
			m := goodMaintenance()
			m.Spec.Nodes = nil
			return m
		}(), "set nodes, nodeSelector or both"},
		"zero nodes at once": {func() client.Object {
			m := goodMaintenance()
			m.Spec.MaxConcurrent = -1
			return m
		}(), "maxConcurrent"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := bed.Client.Create(context.Background(), tc.obj)
			if err == nil {
				t.Fatalf("accepted; want an error saying %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}

	t.Run("stackName and clusterRef cannot change", func(t *testing.T) {
		s := goodStack()
		s.Spec.StackName = "first"
		create(t, s)
		t.Cleanup(func() { deleteStack(t, s) })
		for field, mutate := range map[string]func(*swarmv1.SwarmStack){
			"stackName is immutable":  func(s *swarmv1.SwarmStack) { s.Spec.StackName = "second" },
			"clusterRef is immutable": func(s *swarmv1.SwarmStack) { s.Spec.ClusterRef.Name = "other" },
		} {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				get(t, s)
				changed := s.DeepCopy()
				mutate(changed)
				return bed.Client.Update(context.Background(), changed)
			})
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("want %q, got %v", field, err)
			}
		}
	})
}
