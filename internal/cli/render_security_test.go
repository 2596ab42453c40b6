package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// render --security-level is the operator's check for CI: the same violations, exit 1,
// nothing printed on stdout.
func TestRenderSecurityLevelRefusesWithTheOperatorsMessages(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	text := "services:\n  web:\n    image: nginx\n    volumes: ['/var/run/docker.sock:/s']\n    ports: [{target: 80, published: 80, mode: host}]\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := RunRender(append([]string{"-f", file, "--stack", "app"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("--security-level", "baseline", "--allowed-host-ports", "80")
	want := "render: Security level baseline forbids:\n  " + file + `:4: service "web": volumes[0]: bind mount of host path "/var/run/docker.sock" exposes the Docker socket /var/run/docker.sock (forbidden at level baseline)` + "\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", code, out, errOut, want)
	}
	// Without the port allowed, the host-mode port is refused too.
	if code, _, errOut := run("--security-level", "baseline"); code != 1 || !strings.Contains(errOut, `ports[0]: host-mode published port 80 is not in the allowed host ports (none is allowed)`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := run(); code != 0 || out == "" {
		t.Fatalf("privileged (the default): exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run("--security-level", "strict"); code != 2 || !strings.Contains(errOut, `--security-level: unknown security level "strict"`) {
		t.Fatalf("bad level: exit %d, stderr %q", code, errOut)
	}
}
