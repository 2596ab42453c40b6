// Command kubectl-swarm is the kubectl plugin `kubectl swarm`: put it on the PATH (or
// install it with krew) and run `kubectl swarm --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/swarmops/swarm-operator/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Options{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
