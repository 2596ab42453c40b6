// Command sandbox brings a local multi-node Docker Swarm up or down for people (the
// tests use package sandbox directly). Run it through hack/sandbox.sh, as root:
//
//	hack/sandbox.sh up [-managers 3] [-workers 2] [-name node] [-images auto|none|PATH]
//	hack/sandbox.sh env     # the DOCKER_* exports of the running sandbox(es)
//	hack/sandbox.sh status  # sandboxes in use (by whom) and stale leftovers
//	hack/sandbox.sh down    # remove detached sandboxes and leftovers of earlier runs
//	hack/sandbox.sh clean   # remove only leftovers of interrupted runs
//
// `up` leaves the daemons running in the background (a detached sandbox) and prints
// the nodes and the environment for the docker CLI.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/swarmops/swarm-operator/internal/sandbox"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(os.Args[2:])
	case "down":
		err = sandbox.CleanupAll()
		if err == nil {
			fmt.Fprintln(os.Stderr, "sandbox: detached sandboxes and stale leftovers removed")
			for _, l := range sandbox.InUse() {
				fmt.Fprintln(os.Stderr, "still running (not ours to remove): "+l)
			}
		}
	case "clean":
		err = sandbox.CleanupStale()
		if err == nil {
			fmt.Fprintln(os.Stderr, "sandbox: stale leftovers removed")
		}
	case "env":
		err = env()
	case "status":
		inUse, left := sandbox.InUse(), sandbox.Leftovers()
		for _, l := range inUse {
			fmt.Println(l)
		}
		for _, l := range left {
			fmt.Println("stale: " + l)
		}
		if len(inUse)+len(left) == 0 {
			fmt.Println("no sandbox, nothing left")
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sandbox up [-managers N] [-workers M] [-name PREFIX] [-images auto|none|PATH] | env | status | down | clean")
	os.Exit(2)
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	managers := fs.Int("managers", 3, "number of managers")
	workers := fs.Int("workers", 2, "number of workers")
	name := fs.String("name", "node", "node name prefix")
	images := fs.String("images", "auto", "images tarball to load: auto (the numbers images, built when needed), none, or a path")
	timeout := fs.Duration("timeout", 3*time.Minute, "overall start-up timeout")
	_ = fs.Parse(args)

	if err := sandbox.Available(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	tar := ""
	switch *images {
	case "none":
	case "auto":
		var err error
		if tar, err = sandbox.NumbersImages(ctx); err != nil {
			return err
		}
	default:
		tar = *images
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000")+" "+format+"\n", a...)
	}
	sw, err := sandbox.Start(ctx, sandbox.Options{
		Name: *name, Managers: *managers, Workers: *workers, ImagesTar: tar, Logf: logf, Detach: true,
	})
	if err != nil {
		return err
	}
	fmt.Printf("# Swarm sandbox %d: %d managers, %d workers (state in %s)\n", sw.Instance, *managers, *workers, sw.Dir)
	for _, n := range sw.Nodes {
		fmt.Printf("#   %-8s %-7s %-15s %s  %s\n", n.Name, n.Role, n.IP, n.Endpoint, n.Socket)
	}
	fmt.Printf("# Use it with:  eval \"$(hack/sandbox.sh env)\"   (or source %s)\n", filepath.Join(sw.Dir, "env"))
	for _, kv := range sw.CLIEnv(sw.Nodes[0]) {
		fmt.Printf("export %s\n", kv)
	}
	if ok, why := sandbox.VIPSupported(); !ok {
		fmt.Println("# NOTE: " + why)
	}
	fmt.Println("# Remove it with: hack/sandbox.sh down")
	return nil
}

func env() error {
	root := sandbox.StateRoot()
	// Detached sandboxes (hack/sandbox.sh up) first; those of running tests otherwise.
	files, _ := filepath.Glob(filepath.Join(root, "*", "env"))
	var detached []string
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(filepath.Dir(f), "detached")); err == nil {
			detached = append(detached, f)
		}
	}
	if len(detached) > 0 {
		files = detached
	}
	if len(files) == 0 {
		return fmt.Errorf("no sandbox is running (no %s/*/env)", root)
	}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if len(files) > 1 {
			fmt.Printf("# %s\n", f)
		}
		if i == 0 || len(files) == 1 {
			os.Stdout.Write(b)
		} else {
			for _, line := range splitLines(string(b)) {
				fmt.Println("# " + line)
			}
		}
	}
	return nil
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
