package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// NumbersImages returns the path of a `docker save` tarball holding the numbers test
// images (numbers-api:v1..v5, numbers-web:v1..v5), for Options.ImagesTar.
//
// When $SWARM_SANDBOX_IMAGES names an existing file, that file is used as is (a CI job
// can build the tarball once and hand it over). Otherwise it runs
// hack/build-numbers-images.sh from the repository, which builds the images with the
// host Docker engine the first time and whenever test/numbers changes, and otherwise
// just prints the cached tarball (${XDG_CACHE_HOME:-~/.cache}/swarm-operator/numbers-images.tar).
func NumbersImages(ctx context.Context) (string, error) {
	if p := os.Getenv("SWARM_SANDBOX_IMAGES"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SWARM_SANDBOX_IMAGES: %w", err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "build-numbers-images.sh"))
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/build-numbers-images.sh: %w\n%s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("hack/build-numbers-images.sh printed %q: %w", p, err)
	}
	return p, nil
}

// RepoRoot finds the root of the swarm-operator repository: upwards from the working
// directory (go test runs in the package directory), then from this source file.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
				bytes.Contains(b, []byte("module github.com/swarmops/swarm-operator\n")) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("cannot find the swarm-operator repository (go.mod) above %v", starts)
}
