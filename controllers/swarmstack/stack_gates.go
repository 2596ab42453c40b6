package swarmstack

import (
	"context"
	"time"
)

// revisionGate may hold a new revision back before anything of it is written: it
// returns the condition reason and message while the revision must wait, and when to
// look again. A gate never holds a rollback request, nor drift correction of the
// revision already applied.
type revisionGate func(ctx context.Context, sc *stackScope) (reason, msg string, recheck time.Duration, err error)

// revisionGates are asked in order; the first that holds wins.
var revisionGates = []revisionGate{recordAdoption, holdForMaintenance, holdForDependencies, holdForFreeze}
