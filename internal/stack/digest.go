package stack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"runtime/debug"
	"slices"
	"strings"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
)

// ServiceKey is what a plan compares of a service: its name and the hash of its spec.
type ServiceKey struct{ Name, Hash string }

// RenderedServices lists the services of a rendered revision, sorted by name.
func RenderedServices(st *compose.Stack) []ServiceKey {
	out := make([]ServiceKey, 0, len(st.Services))
	for _, svc := range st.Services {
		out = append(out, ServiceKey{Name: svc.Name, Hash: svc.Hash})
	}
	return sortKeys(out)
}

// OwnedServices lists the services on the swarm that owner wrote, by the spec hash the
// operator labelled them with, sorted by name. ok is false when one of them no longer
// is what the operator wrote (no hash label, or changed by hand since): only a render
// can say what to write back.
func OwnedServices(current []swarmtypes.Service, owner string) (keys []ServiceKey, ok bool) {
	for _, svc := range current {
		if svc.Spec.Labels[swarmv1.LabelOwner] != owner {
			continue
		}
		hash := svc.Spec.Labels[swarmv1.LabelSpecHash]
		if hash == "" || HandEdited(svc) {
			return nil, false
		}
		keys = append(keys, ServiceKey{Name: svc.Spec.Name, Hash: hash})
	}
	return sortKeys(keys), true
}

func sortKeys(keys []ServiceKey) []ServiceKey {
	slices.SortFunc(keys, func(a, b ServiceKey) int { return strings.Compare(a.Name, b.Name) })
	return keys
}

// RenderDigest identifies a render: the operator's build, the inputs (compose.InputKey
// and the source artifact that file: and env_file: read), the security policy the render
// was checked against, the revision they rendered and that revision's services. HMAC-SHA256 under the naming key, as the revision: the
// digest is in status, and must not let anyone confirm a guess of a Secret's value.
func RenderDigest(key []byte, in *Inputs, policy, revision string, services []ServiceKey) string {
	h := hmac.New(sha256.New, key)
	put := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put(operatorBuild)
	inputs := compose.InputKey(in.Files, in.Opts)
	put(string(inputs[:]))
	put(in.SourceRevision)
	put(in.SourceDigest)
	put(policy)
	put(revision)
	for _, svc := range services {
		put(svc.Name)
		put(svc.Hash)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// operatorBuild names the binary: a new build of the operator may render the same
// inputs differently, so it renders them again once.
var operatorBuild = func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	out := bi.Main.Path + "@" + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			out += " " + s.Key + "=" + s.Value
		}
	}
	return out
}()
