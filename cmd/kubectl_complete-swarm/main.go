// Command kubectl_complete-swarm completes `kubectl swarm ...` words: kubectl (1.26 and
// later) runs kubectl_complete-<plugin> from the PATH when it completes a plugin's
// arguments. It asks the plugin's own completion (cobra's __complete).
package main

import (
	"context"
	"os"

	"github.com/swarmops/swarm-operator/internal/cli"
)

func main() {
	args := append([]string{"__complete"}, os.Args[1:]...)
	os.Exit(cli.Main(context.Background(), args, cli.Options{Stdout: os.Stdout, Stderr: os.Stderr}))
}
