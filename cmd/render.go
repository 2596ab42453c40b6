package main

import (
	"io"

	"github.com/swarmops/swarm-operator/internal/cli"
)

// runRender is `swarm-operator render`; `kubectl swarm render` runs the same code.
func runRender(args []string, stdout, stderr io.Writer) int {
	return cli.RunRender(args, stdout, stderr)
}
