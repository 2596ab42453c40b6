package controllers

import (
	"context"
	"time"

	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// SwarmNodeMaintenanceReconciler drains nodes for maintenance windows.
type SwarmNodeMaintenanceReconciler struct {
	client.Client
	Hub      *swarm.Hub
	Recorder record.EventRecorder
	Now      func() time.Time
}

// Reconcile is being written.
func (r *SwarmNodeMaintenanceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller.
func (r *SwarmNodeMaintenanceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&swarmv1.SwarmNodeMaintenance{}).Named("swarmnodemaintenance").Complete(r)
}
