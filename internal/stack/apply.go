package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// ServicePlan is what a reconcile would write to the swarm's services.
type ServicePlan struct {
	Create  []compose.Service
	Update  []compose.Service
	Drifted []string // names of services changed outside the operator
	Prune   []swarmtypes.Service
}

func (p ServicePlan) Empty() bool {
	return len(p.Create)+len(p.Update)+len(p.Prune) == 0
}

// PlanServices compares the rendered services with the swarm's. A service is updated when
// its rendered hash differs from the one it was last written with, when someone changed
// it by hand, or when force is set (a retry).
func PlanServices(rendered *compose.Stack, current []swarmtypes.Service, owner string, prune, force bool) ServicePlan {
	var p ServicePlan
	byName := map[string]swarmtypes.Service{}
	for _, svc := range current {
		byName[svc.Spec.Name] = svc
	}
	want := map[string]bool{}
	for _, svc := range rendered.Services {
		want[svc.Name] = true
		cur, ok := byName[svc.Name]
		switch {
		case !ok:
			p.Create = append(p.Create, svc)
		case force || cur.Spec.Labels[swarmv1.LabelSpecHash] != svc.Hash || cur.Spec.Labels[swarmv1.LabelOwner] != owner:
			p.Update = append(p.Update, svc)
		case HandEdited(cur):
			p.Update = append(p.Update, svc)
			p.Drifted = append(p.Drifted, svc.Name)
		}
	}
	if prune {
		for _, cur := range current {
			if !want[cur.Spec.Name] && cur.Spec.Labels[swarmv1.LabelOwner] == owner {
				p.Prune = append(p.Prune, cur)
			}
		}
	}
	return p
}

// HandEdited is true when the service was written by someone else after the operator's last
// write: its previous spec is the operator's write (same write-id) and the spec differs.
func HandEdited(svc swarmtypes.Service) bool {
	prev := svc.PreviousSpec
	id := svc.Spec.Labels[swarmv1.LabelWriteID]
	if prev == nil || id == "" || prev.Labels[swarmv1.LabelWriteID] != id {
		return false
	}
	a, b := svc.Spec, *prev
	// A forced restart (`docker service update --force`) changes no setting.
	a.TaskTemplate.ForceUpdate, b.TaskTemplate.ForceUpdate = 0, 0
	return !reflect.DeepEqual(a, b)
}

// Apply writes the plan: networks, secrets and configs first, then services. It
// returns the warnings Docker gave about the writes.
func Apply(ctx context.Context, conn swarm.Swarm, rendered *compose.Stack, in *Inputs, plan ServicePlan,
	current []swarmtypes.Service, owner, revision string, queryRegistry bool) ([]string, error) {
	var warnings []string
	if len(plan.Create)+len(plan.Update) > 0 {
		networkIDs, err := ensureNetworks(ctx, conn, rendered, owner)
		if err != nil {
			return nil, err
		}
		secretIDs, configIDs, err := ensureSecretsAndConfigs(ctx, conn, rendered, owner)
		if err != nil {
			return nil, err
		}
		byName := map[string]swarmtypes.Service{}
		for _, svc := range current {
			byName[svc.Spec.Name] = svc
		}
		writeID := strconv.FormatInt(time.Now().UnixNano(), 36)
		align := newAligner(conn, rendered, queryRegistry)
		align.networkIDs = networkIDs // the stack's networks as just listed: no second read
		for _, svc := range append(append([]compose.Service{}, plan.Create...), plan.Update...) {
			spec, err := serviceSpecForWrite(svc, secretIDs, configIDs, owner, revision, writeID)
			if err != nil {
				return warnings, err
			}
			auth := ""
			if spec.TaskTemplate.ContainerSpec != nil {
				auth = in.encodedAuthFor(spec.TaskTemplate.ContainerSpec.Image)
			}
			w := swarm.ServiceWrite{Spec: spec, RegistryAuth: auth, QueryRegistry: queryRegistry}
			verb, write := "creating", conn.CreateService
			if cur, ok := byName[svc.Name]; ok {
				// Same order and spelling as the running spec: only real changes restart tasks.
				if w.Spec, err = align.align(ctx, spec, cur.Spec); err != nil {
					return warnings, fmt.Errorf("updating service %s: %w", svc.Name, err)
				}
				w.ID, w.Version = cur.ID, cur.Version
				verb, write = "updating", conn.UpdateService
			}
			res, err := write(ctx, w)
			for _, msg := range res.Warnings {
				warnings = append(warnings, fmt.Sprintf("service %s: %s", svc.Name, msg))
			}
			if err != nil {
				return warnings, fmt.Errorf("%s service %s: %w", verb, svc.Name, err)
			}
		}
	}
	for _, svc := range plan.Prune {
		if err := conn.RemoveService(ctx, svc.ID); err != nil {
			return warnings, fmt.Errorf("removing service %s: %w", svc.Spec.Name, err)
		}
	}
	return warnings, nil
}

// QueryRegistryFor says whether the write of revision asks the registry for the image
// digests (spec.resolveImage): always, or once per new revision.
func QueryRegistryFor(s *swarmv1.SwarmStack, revision string) bool {
	return s.Spec.ResolveImage == "always" ||
		(s.Spec.ResolveImage == "changed" && revision != s.Status.LastAttemptedRevision)
}

// serviceSpecForWrite copies the rendered spec (the render cache shares it), resolves the
// secret and config names to IDs and adds the operator's labels.
func serviceSpecForWrite(svc compose.Service, secretIDs, configIDs map[string]string, owner, revision, writeID string) (swarmtypes.ServiceSpec, error) {
	var spec swarmtypes.ServiceSpec
	raw, err := json.Marshal(svc.Spec)
	if err != nil {
		return spec, err
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return spec, err
	}
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[swarmv1.LabelOwner] = owner
	spec.Labels[swarmv1.LabelSpecHash] = svc.Hash
	spec.Labels[swarmv1.LabelRevision] = revision
	spec.Labels[swarmv1.LabelWriteID] = writeID
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, ref := range cs.Secrets {
			id, ok := secretIDs[ref.SecretName]
			if !ok {
				return spec, fmt.Errorf("service %s: secret %q not found on the swarm", svc.Name, ref.SecretName)
			}
			ref.SecretID = id
		}
		for _, ref := range cs.Configs {
			id, ok := configIDs[ref.ConfigName]
			if !ok {
				return spec, fmt.Errorf("service %s: config %q not found on the swarm", svc.Name, ref.ConfigName)
			}
			ref.ConfigID = id
		}
	}
	return spec, nil
}

// ensureNetworks creates the stack's missing networks. It returns the stack's networks
// that existed, by name, when it had to list them (nil otherwise).
func ensureNetworks(ctx context.Context, conn swarm.Swarm, rendered *compose.Stack, owner string) (map[string]string, error) {
	var have map[string]string
	var names []string
	for _, n := range rendered.Networks {
		if !n.External {
			names = append(names, n.Name)
		}
	}
	for _, n := range rendered.Networks {
		if n.External {
			ok, err := conn.NetworkExists(ctx, n.Name)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("external network %q does not exist on the swarm", n.Name)
			}
			continue
		}
		if have == nil {
			// By name: a lookup in Swarm's index, where the label alone is a pass over
			// every network. Those the revision does not use are PruneUnused's.
			nets, err := conn.StackNetworks(ctx, rendered.Name, names...)
			if err != nil {
				return nil, err
			}
			have = map[string]string{}
			for _, existing := range nets {
				have[existing.Name] = existing.ID
			}
		}
		if _, ok := have[n.Name]; ok {
			continue
		}
		opts := n.Spec
		opts.Labels = withLabel(opts.Labels, swarmv1.LabelOwner, owner)
		if err := conn.CreateNetwork(ctx, n.Name, opts); err != nil {
			return nil, fmt.Errorf("creating network %s: %w", n.Name, err)
		}
	}
	return have, nil
}

// ensureSecretsAndConfigs creates the stack's missing secrets and configs and returns the
// IDs of every one the services use, external ones included.
func ensureSecretsAndConfigs(ctx context.Context, conn swarm.Swarm, rendered *compose.Stack, owner string) (map[string]string, map[string]string, error) {
	secretIDs, configIDs := map[string]string{}, map[string]string{}
	if len(rendered.Secrets) > 0 {
		existing, err := conn.Secrets(ctx, "")
		if err != nil {
			return nil, nil, err
		}
		for _, s := range existing {
			secretIDs[s.Name] = s.ID
		}
		for _, s := range rendered.Secrets {
			if _, ok := secretIDs[s.Name]; ok {
				continue
			}
			if s.External {
				return nil, nil, fmt.Errorf("external secret %q does not exist on the swarm", s.Name)
			}
			spec := s.Spec
			spec.Labels = withLabel(spec.Labels, swarmv1.LabelOwner, owner)
			id, err := conn.CreateSecret(ctx, spec)
			if err != nil {
				return nil, nil, fmt.Errorf("creating secret %s: %w", s.Name, err)
			}
			secretIDs[s.Name] = id
		}
	}
	if len(rendered.Configs) > 0 {
		existing, err := conn.Configs(ctx, "")
		if err != nil {
			return nil, nil, err
		}
		for _, c := range existing {
			configIDs[c.Name] = c.ID
		}
		for _, c := range rendered.Configs {
			if _, ok := configIDs[c.Name]; ok {
				continue
			}
			if c.External {
				return nil, nil, fmt.Errorf("external config %q does not exist on the swarm", c.Name)
			}
			spec := c.Spec
			spec.Labels = withLabel(spec.Labels, swarmv1.LabelOwner, owner)
			id, err := conn.CreateConfig(ctx, spec)
			if err != nil {
				return nil, nil, fmt.Errorf("creating config %s: %w", c.Name, err)
			}
			configIDs[c.Name] = id
		}
	}
	return secretIDs, configIDs, nil
}

// PruneUnused removes the networks, secrets and configs this stack owns that neither the
// rendered stack nor any service's current or previous spec uses: a Swarm rollback must
// still find the secret versions it goes back to.
func PruneUnused(ctx context.Context, conn swarm.Swarm, rendered *compose.Stack, services []swarmtypes.Service, owner string) error {
	var specs []*swarmtypes.ServiceSpec
	for i := range services {
		specs = append(specs, &services[i].Spec, services[i].PreviousSpec)
	}
	inUse := objectsInUse(rendered, specs)
	inUseSecrets, inUseConfigs, inUseNets := inUse.secrets, inUse.configs, inUse.networks
	var errs []error
	secrets, err := conn.Secrets(ctx, owner)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		if !inUseSecrets[s.Name] {
			errs = append(errs, conn.RemoveSecret(ctx, s.ID))
		}
	}
	configs, err := conn.Configs(ctx, owner)
	if err != nil {
		return err
	}
	for _, c := range configs {
		if !inUseConfigs[c.Name] {
			errs = append(errs, conn.RemoveConfig(ctx, c.ID))
		}
	}
	nets, err := conn.StackNetworks(ctx, rendered.Name)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Labels[swarmv1.LabelOwner] == owner && !inUseNets[n.Name] && !inUseNets[n.ID] {
			errs = append(errs, conn.RemoveNetwork(ctx, n.ID))
		}
	}
	return errors.Join(errs...)
}

// inUse names the secrets, configs and networks (by name or ID) something still uses.
type inUse struct{ secrets, configs, networks map[string]bool }

// objectsInUse is what the rendered stack and the given service specs (nil ones
// skipped) use. Swarm keeps a service's networks by ID or name, and a rollback needs what
// the previous spec used, so callers pass previous specs too.
func objectsInUse(rendered *compose.Stack, specs []*swarmtypes.ServiceSpec) inUse {
	u := inUse{secrets: map[string]bool{}, configs: map[string]bool{}, networks: map[string]bool{}}
	for _, s := range rendered.Secrets {
		u.secrets[s.Name] = true
	}
	for _, c := range rendered.Configs {
		u.configs[c.Name] = true
	}
	for _, n := range rendered.Networks {
		u.networks[n.Name] = true
	}
	for _, spec := range specs {
		if spec == nil {
			continue
		}
		if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
			for _, ref := range cs.Secrets {
				u.secrets[ref.SecretName] = true
			}
			for _, ref := range cs.Configs {
				u.configs[ref.ConfigName] = true
			}
		}
		for _, n := range append(slices.Clone(spec.TaskTemplate.Networks), spec.Networks...) { //nolint:staticcheck // old specs may still use the deprecated field
			u.networks[n.Target] = true
		}
	}
	return u
}

// RemoveStack deletes everything the stack owns: services first, then what they used.
// It reports whether something is still left (networks stay busy until tasks are gone).
func RemoveStack(ctx context.Context, conn swarm.Swarm, stackName, owner string) (remaining int, err error) {
	svcs, err := conn.StackServices(ctx, stackName)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, svc := range svcs {
		if svc.Spec.Labels[swarmv1.LabelOwner] == owner {
			errs = append(errs, conn.RemoveService(ctx, svc.ID))
			remaining++
		}
	}
	if remaining > 0 {
		return remaining, errors.Join(errs...)
	}
	nets, err := conn.StackNetworks(ctx, stackName)
	if err != nil {
		return 0, err
	}
	for _, n := range nets {
		if n.Labels[swarmv1.LabelOwner] == owner {
			if conn.RemoveNetwork(ctx, n.ID) != nil {
				remaining++ // still attached to tasks that are shutting down
			}
		}
	}
	secrets, err := conn.Secrets(ctx, owner)
	if err != nil {
		return 0, err
	}
	for _, s := range secrets {
		if conn.RemoveSecret(ctx, s.ID) != nil {
			remaining++
		}
	}
	configs, err := conn.Configs(ctx, owner)
	if err != nil {
		return 0, err
	}
	for _, c := range configs {
		if conn.RemoveConfig(ctx, c.ID) != nil {
			remaining++
		}
	}
	return remaining, nil
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for lk, lv := range labels {
		out[lk] = lv
	}
	out[k] = v
	return out
}
