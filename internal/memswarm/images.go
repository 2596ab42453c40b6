package memswarm

import (
	"fmt"

	"github.com/distribution/reference"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/opencontainers/go-digest"
)

// RegistryImage is what a registry answers for an image reference: the digest of its
// manifest and the platforms it is built for.
type RegistryImage struct {
	Digest    string
	Platforms []swarmtypes.Platform
}

// clientSideImage does to a written spec's image what Docker's client does before the
// request leaves it (Conn writes through that client, so the spec Swarm stores is this
// one): a reference without tag or digest gets :latest, and a write that asks the
// registry (QueryRegistry) pins the digest the registry answers, tag kept
// ("numbers-api:v1@sha256:..."), with the image's platforms as placement. A reference
// that already names a digest is kept as written. An image the registry does not hold
// (Registry, by familiar reference) is written as it is, with the client's warning.
func (m *Swarm) clientSideImage(spec *swarmtypes.ServiceSpec, queryRegistry bool) (warning string) {
	c := spec.TaskTemplate.ContainerSpec
	if c == nil || c.Image == "" {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(c.Image)
	if err != nil {
		return ""
	}
	c.Image = reference.FamiliarString(reference.TagNameOnly(named))
	if !queryRegistry {
		return ""
	}
	img, ok := m.Registry[c.Image]
	pinned, isPinned := named.(reference.Canonical)
	if isPinned {
		// The registry is asked for the digest itself: any tag of the repository that
		// names it answers.
		ok = false
		for ref, i := range m.Registry {
			if n, err := reference.ParseNormalizedNamed(ref); err == nil && n.Name() == named.Name() && i.Digest == pinned.Digest().String() {
				img, ok = i, true
				break
			}
		}
	}
	if !ok {
		return fmt.Sprintf("image %s could not be accessed on a registry to record\nits digest. Each node will access %s independently,\npossibly leading to different nodes running different\nversions of the image.\n", c.Image, c.Image)
	}
	if !isPinned {
		if withDigest, err := reference.WithDigest(reference.TagNameOnly(named), digest.Digest(img.Digest)); err == nil {
			c.Image = reference.FamiliarString(withDigest)
		}
	}
	if len(img.Platforms) > 0 {
		if spec.TaskTemplate.Placement == nil {
			spec.TaskTemplate.Placement = &swarmtypes.Placement{}
		}
		spec.TaskTemplate.Placement.Platforms = append([]swarmtypes.Platform(nil), img.Platforms...)
	}
	return ""
}
