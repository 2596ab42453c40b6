package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/redact"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// Actions of a StackPlan entry.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionRemove = "remove"
)

// StackPlan is what a reconcile of a SwarmStack would write to its Swarm now, computed
// with the reconciler's own steps (gatherInputs, the compose render, planServices) and
// nothing written. `kubectl swarm diff` prints it.
type StackPlan struct {
	Stack    string `json:"stack"`
	Revision string `json:"revision"`
	// Services to create, update (with the fields that change) or remove (prune).
	Services []ServiceChange `json:"services,omitempty"`
	// Networks, Secrets and Configs to create now, or to remove once the rollout completed
	// (the operator prunes them only then, keeping what the previous specs use).
	Networks []ObjectChange `json:"networks,omitempty"`
	Secrets  []ObjectChange `json:"secrets,omitempty"`
	Configs  []ObjectChange `json:"configs,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	// Held says why a reconcile would write nothing although the plan is not empty
	// (suspend, or a revision that failed and waits for a retry); empty otherwise.
	Held string `json:"held,omitempty"`
}

// Empty is true when a reconcile would change nothing on the Swarm.
func (p StackPlan) Empty() bool {
	return len(p.Services)+len(p.Networks)+len(p.Secrets)+len(p.Configs) == 0
}

// ServiceChange is one service a reconcile would write.
type ServiceChange struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	// Drifted: the service was changed outside the operator; the update restores it.
	Drifted bool          `json:"drifted,omitempty"`
	Fields  []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one field of a service spec, as a JSON path, with its values as JSON.
// An empty Old means the field is added, an empty New that it goes.
type FieldChange struct {
	Path string `json:"path"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
	// Sensitive: the value comes from a Kubernetes Secret (or may): Old and New then
	// hold SensitiveValue where the field has a value, never the value.
	Sensitive bool `json:"sensitive,omitempty"`
}

// ObjectChange is a network, secret or config to create or remove. Replaces names the
// owned object of the same compose key that a new secret or config version rotates out.
type ObjectChange struct {
	Name     string `json:"name"`
	Action   string `json:"action"`
	Replaces string `json:"replaces,omitempty"`
}

// PlanStack computes the plan of a reconcile of s against the Swarm, reading its inputs
// through c as the reconciler does. namingKey must be the operator's (Secret
// swarm-operator-naming-key), or secret and config names will not match. Input errors
// name the file or field, as in the stack's status. A field whose value comes from a
// Secret is marked Sensitive and its values are never in the plan, old or new.
func PlanStack(ctx context.Context, c client.Reader, sw swarm.Swarm, s *swarmv1.SwarmStack, namingKey []byte) (StackPlan, error) {
	stackName := NameOf(s)
	owner := OwnerOf(s)
	red := &redact.Redactor{}
	in, err := GatherInputs(ctx, c, s, stackName)
	if in != nil {
		red.Add(in.Sensitive...)
	}
	if err != nil {
		return StackPlan{}, red.Err(err)
	}
	in.Opts.NameKey = namingKey
	rendered, err := compose.Render(in.Files, in.Opts)
	if err != nil {
		return StackPlan{}, red.Err(err)
	}
	current, err := sw.StackServices(ctx, stackName)
	if err != nil {
		return StackPlan{}, fmt.Errorf("reading the stack's services: %w", err)
	}
	if reason, msg := OwnershipProblem(current, owner, s.Spec.Adopt, nil); reason != "" {
		return StackPlan{}, fmt.Errorf("%s: %s", reason, msg)
	}
	p := StackPlan{Stack: stackName, Revision: rendered.Revision}
	for _, w := range rendered.Warnings {
		p.Warnings = append(p.Warnings, red.Text(w))
	}
	sp := PlanServices(rendered, current, owner, PruneEnabled(s), false)
	byName := map[string]swarmtypes.Service{}
	for _, svc := range current {
		byName[svc.Spec.Name] = svc
	}
	for _, svc := range sp.Create {
		p.Services = append(p.Services, ServiceChange{Name: svc.Name, Action: ActionCreate})
	}
	// Swarm keeps a service's networks by ID; the rendered spec names them.
	nets, err := sw.StackNetworks(ctx, stackName)
	if err != nil {
		return StackPlan{}, fmt.Errorf("reading the stack's networks: %w", err)
	}
	netNames := map[string]string{}
	for _, n := range nets {
		netNames[n.ID] = n.Name
	}
	allSecrets, err := sw.Secrets(ctx, "")
	if err != nil {
		return StackPlan{}, fmt.Errorf("reading the swarm's secrets: %w", err)
	}
	allConfigs, err := sw.Configs(ctx, "")
	if err != nil {
		return StackPlan{}, fmt.Errorf("reading the swarm's configs: %w", err)
	}
	ids := objectIDs{secrets: idsByName(allSecrets), configs: idsByName(allConfigs)}
	// The write is computed as applyStack computes it: the same spec, aligned with the
	// running one by the same aligner, so the plan shows no change the write does not make.
	queryRegistry := QueryRegistryFor(s, rendered.Revision)
	align := newAligner(sw, rendered, queryRegistry)
	sens := newSensitivity(in, rendered)
	if sens.maskFailed && len(sp.Update) > 0 {
		p.Warnings = append(p.Warnings, "the values of changed service fields are not shown: the stack does not render with its Secret-sourced variables masked, so which values come from Secrets is unknown")
	}
	var alignMasked *aligner
	if sens.masked != nil {
		alignMasked = newAligner(sw, sens.masked, queryRegistry)
	}
	for _, svc := range sp.Update {
		cur := byName[svc.Name].Spec
		next, err := plannedWrite(ctx, align, svc, cur, ids, owner, rendered.Revision)
		if err != nil {
			return StackPlan{}, red.Err(err)
		}
		// The same write with every Secret-sourced variable masked: the leaves that differ
		// take their value from a Secret. With no such variable nothing differs.
		masked := &next
		if sens.masked != nil || sens.maskFailed {
			masked = nil
			if m, ok := sens.service(svc.Name); ok {
				if spec, err := plannedWrite(ctx, alignMasked, m, cur, ids, owner, rendered.Revision); err == nil {
					masked = &spec
				}
			}
		}
		fields, err := specChanges(cur, next, masked, sens, netNames)
		if err != nil {
			return StackPlan{}, red.Err(err)
		}
		p.Services = append(p.Services, ServiceChange{Name: svc.Name, Action: ActionUpdate,
			Drifted: slices.Contains(sp.Drifted, svc.Name), Fields: fields})
	}
	for _, svc := range sp.Prune {
		p.Services = append(p.Services, ServiceChange{Name: svc.Spec.Name, Action: ActionRemove})
	}
	if err := planObjects(ctx, sw, rendered, current, nets, allSecrets, allConfigs, sp, owner, PruneEnabled(s), &p); err != nil {
		return StackPlan{}, err
	}
	if !p.Empty() {
		p.Held = heldBecause(s, rendered.Revision)
	}
	// A last net under the structural marking: no value known to come from a Secret
	// passes, in any quoting.
	for i := range p.Services {
		for j := range p.Services[i].Fields {
			f := &p.Services[i].Fields[j]
			f.Old, f.New = red.Text(f.Old), red.Text(f.New)
		}
	}
	return p, nil
}

// objectIDs are the IDs of the swarm's secrets and configs by name; a name the swarm does
// not have yet (created by the write) has none.
type objectIDs struct{ secrets, configs map[string]string }

func idsByName(objs []swarm.Object) map[string]string {
	out := make(map[string]string, len(objs))
	for _, o := range objs {
		out[o.Name] = o.ID
	}
	return out
}

// plannedWrite is the spec applyStack writes over the running spec cur.
func plannedWrite(ctx context.Context, align *aligner, svc compose.Service, cur swarmtypes.ServiceSpec, ids objectIDs, owner, revision string) (swarmtypes.ServiceSpec, error) {
	secretIDs, configIDs := map[string]string{}, map[string]string{}
	if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, ref := range cs.Secrets {
			secretIDs[ref.SecretName] = ids.secrets[ref.SecretName]
		}
		for _, ref := range cs.Configs {
			configIDs[ref.ConfigName] = ids.configs[ref.ConfigName]
		}
	}
	next, err := serviceSpecForWrite(svc, secretIDs, configIDs, owner, revision, "")
	if err != nil {
		return next, err
	}
	next, err = align.align(ctx, next, cur)
	if err != nil {
		return next, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	return next, nil
}

// heldBecause repeats the reconciler's reasons to write nothing at all.
func heldBecause(s *swarmv1.SwarmStack, revision string) string {
	st := &s.Status
	if s.Spec.Suspend {
		return "the stack is suspended: nothing is written until spec.suspend is false"
	}
	if last := LastOutcome(st.History); revision == st.LastAttemptedRevision && FailedOutcome(last.Outcome) {
		return fmt.Sprintf("revision %s %s: it is written again only on a retry (kubectl swarm retry)", ShortRev(revision), OutcomeWords(last.Outcome))
	}
	return ""
}

// specChanges lists the fields of the current spec that the write next changes. Labels
// that change on every write, and the IDs Swarm gives secrets and configs, are left out.
// masked is next written with every Secret-sourced input masked (nil when it could not
// be computed: every value is then hidden); a leaf that differs between the two, or that
// holds a Secret's value, is Sensitive, and so is the current value at its path.
func specChanges(cur, next swarmtypes.ServiceSpec, masked *swarmtypes.ServiceSpec, sens *sensitivity, netNames map[string]string) ([]FieldChange, error) {
	cur.TaskTemplate.Networks = slices.Clone(cur.TaskTemplate.Networks)
	for i, n := range cur.TaskTemplate.Networks {
		if name, ok := netNames[n.Target]; ok {
			cur.TaskTemplate.Networks[i].Target = name
		}
	}
	a, err := flatten(cur)
	if err != nil {
		return nil, err
	}
	b, err := flatten(next)
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if masked != nil {
		if m, err = flatten(*masked); err != nil {
			return nil, err
		}
	}
	secret := func(path string) bool {
		if masked == nil {
			return true
		}
		nv, ok := b[path]
		if !ok {
			// A variable gone from the environment may have held a rotated-out Secret
			// value, which nothing here knows any more.
			return strings.HasPrefix(path, envPath+".") || sens.holdsSecret(a[path])
		}
		if mv, mok := m[path]; (!mok || mv != nv) && !sens.isObjectName(path, nv) {
			return true
		}
		return sens.holdsSecret(nv) || sens.holdsSecret(a[path])
	}
	var out []FieldChange
	add := func(path, ov, nv string) {
		f := FieldChange{Path: path, Old: ov, New: nv}
		if secret(path) {
			f.Sensitive = true
			if f.Old != "" {
				f.Old = SensitiveValue
			}
			if f.New != "" {
				f.New = SensitiveValue
			}
		}
		out = append(out, f)
	}
	for path, nv := range b {
		if ignoredPath(path) {
			continue
		}
		ov, ok := a[path]
		// An empty string in the rendered spec is a setting left unset: Swarm fills in its
		// default (a rollback order, say), which is no change.
		if ok && ov != nv && nv != `""` || !ok && !swarmDefault(path, nv) {
			add(path, ov, nv)
		}
	}
	for path, ov := range a {
		if _, ok := b[path]; !ok && !ignoredPath(path) && !swarmDefault(path, ov) {
			add(path, ov, "")
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// SensitiveValue stands for the value of a Sensitive field in a plan.
const SensitiveValue = "(sensitive)"

// envPath is where flatten puts the environment, by variable name: Swarm's list order is
// no setting a diff should show, and a variable keeps its path when its value changes.
const envPath = "TaskTemplate.ContainerSpec.Env"

// sensitivity knows what in a stack's render comes from a Secret: the render again with
// every Secret-sourced variable masked (nil when there is no such variable, or when the
// masked values do not render), and the Secret values themselves.
type sensitivity struct {
	masked *compose.Stack
	// maskFailed: some variable comes from a Secret but the masked render failed.
	maskFailed bool
	values     []string
	// objectNames are the names of the secrets and configs the stack creates: keyed
	// digests, never a Secret's value.
	objectNames map[string]bool
}

func newSensitivity(in *Inputs, rendered *compose.Stack) *sensitivity {
	sens := &sensitivity{values: slices.Clone(in.Sensitive), objectNames: map[string]bool{}}
	secretData := map[string]bool{}
	for _, sec := range rendered.Secrets {
		if !sec.External {
			sens.objectNames[sec.Name] = true
			secretData[string(sec.Spec.Data)] = true
			sens.values = append(sens.values, string(sec.Spec.Data))
		}
	}
	for _, cfg := range rendered.Configs {
		if !cfg.External {
			sens.objectNames[cfg.Name] = true
		}
	}
	// Masked: the variables read from Secrets, and those a compose secret takes its data
	// from (environment:), whatever their source.
	toMask := map[string]bool{}
	for _, k := range in.Opts.SensitiveVariables {
		toMask[k] = true
	}
	for k, v := range in.Opts.Variables {
		if secretData[v] {
			toMask[k] = true
		}
	}
	if len(toMask) == 0 {
		return sens
	}
	opts := in.Opts
	opts.Variables = maps.Clone(in.Opts.Variables)
	for k := range toMask {
		if v, ok := opts.Variables[k]; ok {
			opts.Variables[k] = maskOf(v)
		}
	}
	masked, err := compose.Render(in.Files, opts)
	if err != nil {
		// Its message may quote a value: it is dropped, and every value hidden instead.
		sens.maskFailed = true
		return sens
	}
	sens.masked = masked
	return sens
}

// service is a service of the masked render.
func (sens *sensitivity) service(name string) (compose.Service, bool) {
	if sens.masked == nil {
		return compose.Service{}, false
	}
	i := slices.IndexFunc(sens.masked.Services, func(s compose.Service) bool { return s.Name == name })
	if i < 0 {
		return compose.Service{}, false
	}
	return sens.masked.Services[i], true
}

// maskOf is a stand-in for a Secret's value that differs from it and still renders where
// the value is a number or a boolean.
func maskOf(v string) string {
	switch {
	case v == "true":
		return "false"
	case v == "false":
		return "true"
	case v != "" && strings.Trim(v, "0123456789") == "":
		if v == "1" {
			return "2"
		}
		return "1"
	case v == "swarmops-masked":
		return "swarmops-masked-other"
	}
	return "swarmops-masked"
}

// isObjectName: a secret or config name the stack creates (a keyed digest of the data)
// may differ in the masked render without being a value.
func (sens *sensitivity) isObjectName(path, leaf string) bool {
	if !strings.HasSuffix(path, ".SecretName") && !strings.HasSuffix(path, ".ConfigName") {
		return false
	}
	var name string
	return json.Unmarshal([]byte(leaf), &name) == nil && sens.objectNames[name]
}

// holdsSecret: a leaf (as JSON) holds a Secret's value, as it is or spelled another way.
func (sens *sensitivity) holdsSecret(leaf string) bool {
	var text string
	if leaf == "" || json.Unmarshal([]byte(leaf), &text) != nil {
		return false
	}
	for _, v := range sens.values {
		if v == "" {
			continue
		}
		if text == v || len(strings.TrimSpace(v)) >= redact.MinRedacted && strings.Contains(text, strings.TrimSpace(v)) {
			return true
		}
	}
	return false
}

func ignoredPath(path string) bool {
	return strings.HasSuffix(path, ".SecretID") || strings.HasSuffix(path, ".ConfigID") ||
		path == "Labels."+swarmv1.LabelWriteID
}

// swarmDefault is true for values Swarm fills in on a write that the rendered spec leaves
// empty: they are not a change.
func swarmDefault(path, v string) bool {
	switch path {
	case "TaskTemplate.ContainerSpec.Isolation", "TaskTemplate.Runtime", "TaskTemplate.ForceUpdate", "EndpointSpec.Mode":
		return true
	}
	return v == "null" || v == "{}" || v == "[]" || v == `""` || v == "0" || v == "false"
}

// flatten maps a value's JSON form to path → JSON of each leaf (lists indexed, the
// environment by variable name). Leaves are written without HTML escaping: `<` stays `<`.
func flatten(v any) (map[string]string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(prefix string, v any) error
	walk = func(prefix string, v any) error {
		switch t := v.(type) {
		case map[string]any:
			for k, child := range t {
				if err := walk(joinPath(prefix, k), child); err != nil {
					return err
				}
			}
		case []any:
			if prefix == envPath {
				return walk(prefix, envByName(t))
			}
			for i, child := range t {
				if err := walk(fmt.Sprintf("%s[%d]", prefix, i), child); err != nil {
					return err
				}
			}
		default:
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(t); err != nil {
				return err
			}
			out[prefix] = strings.TrimSuffix(b.String(), "\n")
		}
		return nil
	}
	if err := walk("", tree); err != nil {
		return nil, err
	}
	return out, nil
}

// envByName maps "NAME=value" entries to NAME → value; the last of a name wins, as in the
// container. An entry without "=" keeps the entry as its value.
func envByName(entries []any) map[string]any {
	out := make(map[string]any, len(entries))
	for _, e := range entries {
		s, _ := e.(string)
		if name, value, ok := strings.Cut(s, "="); ok {
			out[name] = value
		} else {
			out[s] = s
		}
	}
	return out
}

func joinPath(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// planObjects fills in the networks, secrets and configs a reconcile creates, and those
// the prune after the rollout would remove: owned objects that neither the rendered
// stack nor the services' specs after the rollout (current and previous) use.
func planObjects(ctx context.Context, sw swarm.Swarm, rendered *compose.Stack, current []swarmtypes.Service, nets, allSecrets, allConfigs []swarm.Object,
	sp ServicePlan, owner string, prune bool, p *StackPlan) error {
	writes := len(sp.Create)+len(sp.Update) > 0
	var missing []error
	if writes {
		have := objectNames(nets)
		for _, n := range rendered.Networks {
			if n.External {
				ok, err := sw.NetworkExists(ctx, n.Name)
				if err != nil {
					return err
				}
				if !ok {
					missing = append(missing, fmt.Errorf("external network %q does not exist on the swarm", n.Name))
				}
				continue
			}
			if !have[n.Name] {
				p.Networks = append(p.Networks, ObjectChange{Name: n.Name, Action: ActionCreate})
			}
		}
		haveS, haveC := objectNames(allSecrets), objectNames(allConfigs)
		for _, s := range rendered.Secrets {
			if haveS[s.Name] {
				continue
			}
			if s.External {
				missing = append(missing, fmt.Errorf("external secret %q does not exist on the swarm", s.Name))
				continue
			}
			p.Secrets = append(p.Secrets, ObjectChange{Name: s.Name, Action: ActionCreate, Replaces: rotated(allSecrets, owner, s.Name)})
		}
		for _, c := range rendered.Configs {
			if haveC[c.Name] {
				continue
			}
			if c.External {
				missing = append(missing, fmt.Errorf("external config %q does not exist on the swarm", c.Name))
				continue
			}
			p.Configs = append(p.Configs, ObjectChange{Name: c.Name, Action: ActionCreate, Replaces: rotated(allConfigs, owner, c.Name)})
		}
	}
	if err := errors.Join(missing...); err != nil {
		return err
	}
	if !prune {
		return nil
	}
	// What the services use once the rollout completed: updated services keep their
	// current spec as previous spec; removed ones use nothing.
	written := map[string]bool{}
	for _, svc := range append(slices.Clone(sp.Create), sp.Update...) {
		written[svc.Name] = true
	}
	removed := map[string]bool{}
	for _, svc := range sp.Prune {
		removed[svc.Spec.Name] = true
	}
	var specs []*swarmtypes.ServiceSpec
	for i := range current {
		svc := &current[i]
		if removed[svc.Spec.Name] {
			continue
		}
		specs = append(specs, &svc.Spec)
		if !written[svc.Spec.Name] {
			specs = append(specs, svc.PreviousSpec)
		}
	}
	// The same rule as the prune after a completed rollout (pruneUnused).
	u := objectsInUse(rendered, specs)
	inUseS, inUseC, inUseN := u.secrets, u.configs, u.networks
	for _, s := range allSecrets {
		if s.Labels[swarmv1.LabelOwner] == owner && !inUseS[s.Name] && !replaced(p.Secrets, s.Name) {
			p.Secrets = append(p.Secrets, ObjectChange{Name: s.Name, Action: ActionRemove})
		}
	}
	for _, c := range allConfigs {
		if c.Labels[swarmv1.LabelOwner] == owner && !inUseC[c.Name] && !replaced(p.Configs, c.Name) {
			p.Configs = append(p.Configs, ObjectChange{Name: c.Name, Action: ActionRemove})
		}
	}
	for _, n := range nets {
		if n.Labels[swarmv1.LabelOwner] == owner && !inUseN[n.Name] && !inUseN[n.ID] {
			p.Networks = append(p.Networks, ObjectChange{Name: n.Name, Action: ActionRemove})
		}
	}
	return nil
}

// replaced is true when a created version already names obj as the one it rotates out:
// the rotation says so, a separate removal line would say it twice.
func replaced(changes []ObjectChange, name string) bool {
	for _, c := range changes {
		if c.Replaces == name {
			return true
		}
	}
	return false
}

func objectNames(objs []swarm.Object) map[string]bool {
	out := make(map[string]bool, len(objs))
	for _, o := range objs {
		out[o.Name] = true
	}
	return out
}

// rotated names the owned version that a new secret or config name replaces: keyed names
// are "<stack>_<name>-<10 hex>", so the same prefix is the same compose key. The old
// version is really removed only once no service spec uses it.
func rotated(existing []swarm.Object, owner, name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return ""
	}
	prefix := name[:i+1]
	for _, o := range existing {
		if o.Labels[swarmv1.LabelOwner] == owner && strings.HasPrefix(o.Name, prefix) && len(o.Name) == len(name) {
			return o.Name
		}
	}
	return ""
}

// StackTree is what a stack owns on its Swarm.
type StackTree struct {
	Stack    string          `json:"stack"`
	Services []TreeService   `json:"services,omitempty"`
	Networks []swarm.Object  `json:"networks,omitempty"`
	Secrets  []swarm.Object  `json:"secrets,omitempty"`
	Configs  []swarm.Object  `json:"configs,omitempty"`
	Others   []ForeignObject `json:"others,omitempty"`
}

// TreeService is one service of the stack with what it uses.
type TreeService struct {
	Name     string   `json:"name"`
	Image    string   `json:"image,omitempty"`
	Mode     string   `json:"mode"`
	Running  uint64   `json:"running"`
	Desired  uint64   `json:"desired"`
	Networks []string `json:"networks,omitempty"`
	Secrets  []string `json:"secrets,omitempty"`
	Configs  []string `json:"configs,omitempty"`
}

// ForeignObject is an object in the stack's namespace label that this SwarmStack does not
// own (another owner, or none: a stack the operator did not create).
type ForeignObject struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"`
}

// StackObjects lists the services, networks, secrets and configs the stack owns on sw.
func StackObjects(ctx context.Context, sw swarm.Swarm, s *swarmv1.SwarmStack) (StackTree, error) {
	stackName, owner := NameOf(s), OwnerOf(s)
	t := StackTree{Stack: stackName}
	svcs, err := sw.StackServices(ctx, stackName)
	if err != nil {
		return t, fmt.Errorf("reading the stack's services: %w", err)
	}
	netNames := map[string]string{}
	nets, err := sw.StackNetworks(ctx, stackName)
	if err != nil {
		return t, fmt.Errorf("reading the stack's networks: %w", err)
	}
	for _, n := range nets {
		netNames[n.ID] = n.Name
		if n.Labels[swarmv1.LabelOwner] == owner {
			t.Networks = append(t.Networks, n)
		} else {
			t.Others = append(t.Others, ForeignObject{Kind: "network", Name: n.Name, Owner: n.Labels[swarmv1.LabelOwner]})
		}
	}
	statuses := ServiceStatuses(svcs, ExactTaskCounts(ctx, sw, svcs))
	for i, svc := range svcs {
		if svc.Spec.Labels[swarmv1.LabelOwner] != owner {
			t.Others = append(t.Others, ForeignObject{Kind: "service", Name: svc.Spec.Name, Owner: svc.Spec.Labels[swarmv1.LabelOwner]})
			continue
		}
		ts := TreeService{Name: svc.Spec.Name, Image: statuses[i].Image, Mode: statuses[i].Mode,
			Running: statuses[i].RunningTasks, Desired: statuses[i].DesiredTasks}
		for _, n := range svc.Spec.TaskTemplate.Networks {
			name := n.Target
			if v, ok := netNames[name]; ok {
				name = v
			}
			ts.Networks = append(ts.Networks, name)
		}
		if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
			for _, ref := range cs.Secrets {
				ts.Secrets = append(ts.Secrets, ref.SecretName)
			}
			for _, ref := range cs.Configs {
				ts.Configs = append(ts.Configs, ref.ConfigName)
			}
		}
		t.Services = append(t.Services, ts)
	}
	if t.Secrets, err = sw.Secrets(ctx, owner); err != nil {
		return t, fmt.Errorf("reading the stack's secrets: %w", err)
	}
	if t.Configs, err = sw.Configs(ctx, owner); err != nil {
		return t, fmt.Errorf("reading the stack's configs: %w", err)
	}
	return t, nil
}
