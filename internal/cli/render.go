package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/security"
)

// multiFlag collects a repeated flag in order.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// RunRender prints what the operator would deploy for the given compose files: the merged
// compose file, or the swarm objects. It is the dry run for CI pipelines, shared by
// `swarm-operator render` and `kubectl swarm render`. Exit code 0, 1 when the files are
// bad, 2 for a usage error.
func RunRender(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files, vars multiFlag
	fs.Var(&files, "f", "compose file, repeatable; merged in order (core first)")
	fs.Var(&vars, "var", "variable K=V for ${K} interpolation, repeatable")
	stack := fs.String("stack", "", "stack name (default: the first file's directory name)")
	output := fs.String("output", "swarm", "what to print: compose (the merged file) or swarm (the objects; secret data is left out)")
	format := fs.String("format", "yaml", "yaml or json")
	nameKeyFile := fs.String("name-key-file", "", "file whose bytes are the operator's name key: secret and config names and the revision are then the operator's (without it they carry a plain sha256, which anyone can recompute)")
	order := fs.String("update-order", "Parallel", "the SwarmStack's spec.updateOrder: Parallel, or DependsOn to check depends_on and print the waves of an ordered release")
	level := fs.String("security-level", "privileged", "refuse (exit 1) compose content this security level forbids: privileged, baseline or restricted, as the operator enforces it")
	hostPaths := fs.String("allowed-host-paths", "", "comma-separated host paths baseline allows to bind-mount (the operator's --stack-security-allowed-host-paths)")
	hostPorts := fs.String("allowed-host-ports", "", "comma-separated ports baseline and restricted allow to publish in host mode (the operator's --stack-security-allowed-host-ports)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	policy, err := renderPolicy(*level, *hostPaths, *hostPorts)
	if err != nil {
		fmt.Fprintf(stderr, "render: %v\n", err)
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "render: give at least one compose file with -f")
		return 2
	}
	// Usage errors before any work, whatever the files hold.
	if *output != "compose" && *output != "swarm" {
		fmt.Fprintf(stderr, "render: --output must be compose or swarm, not %q\n", *output)
		return 2
	}
	if *format != "yaml" && *format != "json" {
		fmt.Fprintf(stderr, "render: --format must be yaml or json, not %q\n", *format)
		return 2
	}
	if *order != "Parallel" && *order != "DependsOn" {
		fmt.Fprintf(stderr, "render: --update-order must be Parallel or DependsOn, not %q\n", *order)
		return 2
	}
	if *stack == "" {
		abs, _ := filepath.Abs(files[0])
		*stack = filepath.Base(filepath.Dir(abs))
	}
	opts := compose.Options{StackName: *stack, Variables: map[string]string{}, OrderByDependsOn: *order == "DependsOn"}
	for _, kv := range vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(stderr, "render: --var %q: want K=V\n", kv)
			return 2
		}
		opts.Variables[k] = v
	}
	if *nameKeyFile != "" {
		key, err := os.ReadFile(*nameKeyFile)
		if err != nil {
			fmt.Fprintf(stderr, "render: --name-key-file: %v\n", err)
			return 1
		}
		if len(key) == 0 {
			fmt.Fprintf(stderr, "render: --name-key-file %s is empty\n", *nameKeyFile)
			return 1
		}
		opts.NameKey = key
	}
	base := filepath.Dir(files[0])
	opts.ReadFile = func(p string) ([]byte, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		return os.ReadFile(p)
	}
	var in []compose.File
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "render: %v\n", err)
			return 1
		}
		in = append(in, compose.File{Name: f, Content: data})
	}
	if code := checkSecurity(in, opts, policy, stderr); code != 0 {
		return code
	}
	var out any
	switch *output {
	case "compose":
		merged, err := compose.MergedYAML(in, opts)
		if err != nil {
			fmt.Fprintf(stderr, "render: %v\n", err)
			return 1
		}
		if *format == "yaml" {
			_, _ = stdout.Write(merged)
			return 0
		}
		if err := yaml.Unmarshal(merged, &out); err != nil {
			fmt.Fprintf(stderr, "render: %v\n", err)
			return 1
		}
	case "swarm":
		st, err := compose.Render(in, opts)
		if err != nil {
			fmt.Fprintf(stderr, "render: %v\n", err)
			return 1
		}
		for _, w := range st.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		// The waves also go into the output (Waves); this is the line a reader scans.
		for i, wave := range st.Waves {
			fmt.Fprintf(stderr, "wave %d: %s\n", i, strings.Join(wave, ", "))
		}
		// The output ends up in CI logs: never print secret data. A secret's
		// name ends in a hash of its data (keyed with --name-key-file), which
		// shows when it changes.
		redacted := *st
		redacted.Secrets = slices.Clone(st.Secrets)
		for i := range redacted.Secrets {
			redacted.Secrets[i].Spec.Data = nil
		}
		out = &redacted
	default:
		fmt.Fprintf(stderr, "render: --output must be compose or swarm, not %q\n", *output)
		return 2
	}
	var data []byte
	switch *format {
	case "json":
		data, err = json.MarshalIndent(out, "", "  ")
		data = append(data, '\n')
	case "yaml":
		data, err = yaml.Marshal(out)
	default:
		fmt.Fprintf(stderr, "render: --format must be yaml or json, not %q\n", *format)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "render: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(data)
	return 0
}

func renderPolicy(level, paths, ports string) (security.Policy, error) {
	var p security.Policy
	var err error
	if p.Level, err = security.ParseLevel(level); err != nil {
		return p, fmt.Errorf("--security-level: %w", err)
	}
	if p.AllowedHostPaths, err = security.ParsePaths(paths); err != nil {
		return p, fmt.Errorf("--allowed-host-paths: %w", err)
	}
	if p.AllowedHostPorts, err = security.ParsePorts(ports); err != nil {
		return p, fmt.Errorf("--allowed-host-ports: %w", err)
	}
	return p, nil
}

// checkSecurity refuses what the level forbids, one violation a line, in the words of
// the operator's PolicyViolation.
func checkSecurity(in []compose.File, opts compose.Options, p security.Policy, stderr io.Writer) int {
	if p.Level == security.Privileged {
		return 0
	}
	st, err := compose.Render(in, opts)
	if err != nil {
		fmt.Fprintf(stderr, "render: %v\n", err)
		return 1
	}
	vs := security.Check(st, in, p)
	if len(vs) == 0 {
		return 0
	}
	fmt.Fprintf(stderr, "render: Security level %s forbids:\n", p.Level)
	for _, v := range vs {
		fmt.Fprintf(stderr, "  %s\n", v)
	}
	return 1
}

func renderCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "render -f FILE... [--stack NAME] [--var K=V]... [--output compose|swarm] [--format yaml|json] [--name-key-file F] [--security-level LEVEL] [--update-order DependsOn]",
		Short: "Render compose files as the operator would deploy them (no cluster needed)",
		// The flags are render's own (the same as swarm-operator render).
		DisableFlagParsing: true,
		PersistentPreRunE:  func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := RunRender(args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return withCode(code, nil)
			}
			return nil
		},
	}
}
