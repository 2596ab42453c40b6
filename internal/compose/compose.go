package compose

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"go.yaml.in/yaml/v4"
)

// File is one compose file; Name is what errors call it.
type File struct {
	Name    string
	Content []byte
}

// Options are the inputs besides the files.
type Options struct {
	// StackName is the stack (compose project) name: the prefix of every
	// object name and the value of the com.docker.stack.namespace label.
	StackName string
	// Variables are the only source of ${VAR} interpolation and of
	// environment entries given without a value; the OS environment is
	// never read.
	Variables map[string]string
	// SecretData and ConfigData hold the data of top-level secrets and
	// configs by compose key. They take precedence over file:, content: and
	// environment: in the compose file.
	SecretData map[string][]byte
	ConfigData map[string][]byte
	// ReadFile, when set, reads `file:` of secrets/configs and env_file
	// entries, with the path as written in the compose file. When nil such
	// references are errors (unless SecretData/ConfigData has the key).
	ReadFile func(path string) ([]byte, error)
	// SensitiveVariables names the Variables whose values must never appear
	// in an error or warning that Render, Cache.Render or MergedYAML returns:
	// those that come from a Kubernetes Secret. Every occurrence of such a
	// value (and of a secret's data, wherever it comes from) is replaced by
	// "[redacted]"; values shorter than 4 characters are left alone. Names
	// without a variable are ignored.
	SensitiveVariables []string
	// NameKey keys the hash that ends the names of the secrets and configs
	// the stack creates, and the revision: HMAC-SHA256 with this key, so that
	// who can list the swarm's secrets cannot confirm a guess of their data.
	// The operator always passes its own key. When empty, the hash is the
	// plain SHA-256 of the data (what `swarm-operator render` prints unless
	// given the key), which anyone can recompute.
	NameKey []byte
	// OrderByDependsOn validates the services' depends_on and computes Stack.Waves
	// (updateOrder DependsOn). Without it depends_on is ignored, as docker stack deploy
	// ignores it.
	OrderByDependsOn bool
}

// Stack is the rendered stack. It is shared by Cache: treat it as immutable.
type Stack struct {
	Name     string
	Networks []Network // sorted by Name
	Secrets  []Secret  // sorted by Key
	Configs  []Config  // sorted by Key
	Services []Service // sorted by Name
	// Revision is "sha256:<hex>" over everything above; it changes when
	// any spec, or any secret or config data, changes.
	Revision string
	Warnings []string // sorted
	// Waves are the service names in the order an ordered release writes them (only
	// with Options.OrderByDependsOn): a service's dependencies are in earlier waves.
	// Each wave is sorted. Not part of Revision: the order changes no spec.
	Waves [][]string `json:",omitempty"`

	// project is what the stack was rendered from, for checks of the compose
	// content (internal/security).
	project *types.Project
}

// Project is the merged, interpolated compose project the stack was rendered
// from. It is shared like the Stack: treat it as immutable.
func (st *Stack) Project() *types.Project { return st.project }

// Locator names the file and line of a key of the merged project, given as its path
// (e.g. "services", "web", "volumes", "0"): the last file that writes the whole path,
// else the last that writes a part of it. Line is 0 when unknown.
type Locator func(path ...string) (file string, line int)

// NewLocator reads the files a Stack was rendered from again, for messages that name a
// file and line. Parsing them again when such a message is needed, which is rare, costs
// less than keeping every file's YAML tree with each cached Stack.
func NewLocator(files []File) Locator {
	var srcs []*source
	for i, f := range files {
		if f.Name == "" {
			f.Name = fmt.Sprintf("file #%d", i+1)
		}
		if src, err := newSource(f); err == nil {
			srcs = append(srcs, src)
		}
	}
	return func(path ...string) (string, int) {
		e := locate(srcs, path...)
		return e.File, e.Line
	}
}

// Network is a network the stack uses. External networks are only
// referenced (Spec is empty): they must exist.
type Network struct {
	Name     string
	External bool
	Spec     network.CreateOptions
}

// Secret is a top-level compose secret. For a secret the stack creates, Name
// ends in a hash of its data (see the package documentation).
type Secret struct {
	Key      string
	Name     string
	External bool
	Spec     swarm.SecretSpec
}

// Config is a top-level compose config, named like Secret.
type Config struct {
	Key      string
	Name     string
	External bool
	Spec     swarm.ConfigSpec
}

// Service is one Swarm service. Its spec refers to secrets, configs and
// networks by name (SecretName, ConfigName, NetworkAttachmentConfig.Target
// and a credential spec's Config); resolving IDs is left to the caller.
type Service struct {
	Key  string // compose service key
	Name string // <stack>_<key>
	Spec swarm.ServiceSpec
	Hash string // "sha256:<hex>" of the spec's JSON
	// DependsOn are the service's depends_on entries that an ordered release waits on
	// (only with Options.OrderByDependsOn), sorted by service. Not part of Revision.
	DependsOn []Dependency `json:"-"`
}

// Dependency is one depends_on entry: the service (<stack>_<key>) and the condition
// its dependent waits for.
type Dependency struct {
	Service   string
	Condition string // service_started, service_healthy or service_completed_successfully
}

// Render loads, merges and converts the files. On error it returns no Stack,
// and an *Error when the input is at fault.
func Render(files []File, opts Options) (*Stack, error) {
	st, _, err := render(files, opts)
	return st, err
}

// MergedYAML returns the merged and interpolated project, as
// `docker compose -f a -f b config` prints it but without the defaults
// Compose would add and stack deploy does not (default network, build
// context, ...). Rendering it as a single file gives the same Stack, except
// for inline secret content, which compose-go never prints.
func MergedYAML(files []File, opts Options) (out []byte, err error) {
	red := newRedactor(opts)
	defer func() { err = red.err(err) }()
	defer guard(&err)
	ld, err := load(files, opts)
	if err != nil {
		red.addSecretEnvironment(ld.srcs, opts.Variables)
		return nil, err
	}
	return ld.project.MarshalYAML()
}

func render(files []File, opts Options) (st *Stack, reads map[string]fileRead, err error) {
	red := newRedactor(opts)
	defer func() { err = red.err(err) }()
	defer guard(&err)
	ld, err := load(files, opts)
	if err != nil {
		red.addSecretEnvironment(ld.srcs, opts.Variables)
		return nil, nil, err
	}
	c := &converter{stack: opts.StackName, p: ld.project, srcs: ld.srcs, opts: opts, warnings: ld.warnings, red: red}
	st, err = c.convert()
	if err != nil {
		return nil, nil, err
	}
	st.Warnings = red.strings(st.Warnings)
	st.project = ld.project
	return st, c.reads, nil
}

// guard turns a panic (in compose-go or here) into an error: a bad compose
// file must never take the operator down.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("compose: internal error: %v", r)
	}
}

type loaded struct {
	project  *types.Project
	srcs     []*source
	warnings []string
}

// load returns the loaded files even with an error: the sources read so far
// tell what an error must not quote.
func load(files []File, opts Options) (*loaded, error) {
	ld := &loaded{}
	if len(files) == 0 {
		return ld, &Error{Msg: "no compose files"}
	}
	if opts.StackName == "" || loader.NormalizeProjectName(opts.StackName) != opts.StackName {
		return ld, &Error{Msg: fmt.Sprintf("invalid stack name %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit", opts.StackName)}
	}
	warn := func(w string) { ld.warnings = append(ld.warnings, w) }
	var version string
	details := types.ConfigDetails{WorkingDir: "/", Environment: types.Mapping{}}
	for k, v := range opts.Variables {
		details.Environment[k] = v
	}
	for i, f := range files {
		if f.Name == "" {
			f.Name = fmt.Sprintf("file #%d", i+1)
		}
		src, err := newSource(f)
		if err != nil {
			return ld, err
		}
		src.ordered = opts.OrderByDependsOn
		v, err := src.scan(warn)
		if err != nil {
			return ld, err
		}
		if v != "" {
			warn(fmt.Sprintf("%s: the top-level key \"version\" is obsolete and ignored", f.Name))
			if version != "" && v != version {
				line, _ := src.find([]string{"version"})
				return ld, &Error{File: f.Name, Line: line, Msg: fmt.Sprintf("version %q differs from version %q of an earlier file; docker stack deploy refuses that", v, version)}
			}
			version = v
		}
		ld.srcs = append(ld.srcs, src)
		if err := checkTotals(ld.srcs); err != nil {
			return ld, err
		}
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: f.Name, Content: src.text})
	}
	var unset []string
	var unsetNames map[string]bool
	msgs, err := captureLogsWith(func(h *captureHook) (err error) {
		ld.project, err = loader.LoadWithContext(context.Background(), details, loaderOptions(opts.StackName))
		if err == nil {
			unset, unsetNames = warnUnset(h, ld.srcs, opts.Variables)
		}
		return err
	})
	if err != nil {
		return ld, attribute(err, ld.srcs, details, opts.StackName)
	}
	ld.warnings = append(ld.warnings, dropUnset(msgs, unsetNames)...)
	ld.warnings = append(ld.warnings, unset...)
	return ld, nil
}

// checkTotals enforces the limits on all files together (see source.go); the last
// file is the one that went over.
func checkTotals(srcs []*source) error {
	last := srcs[len(srcs)-1]
	docs, nodes := 0, 0
	services := map[string]bool{}
	for _, src := range srcs {
		docs += len(src.docs)
		nodes += src.nodes
		for _, doc := range src.docs {
			if len(doc.Content) == 0 {
				continue
			}
			k, v := lookup(deref(doc.Content[0]), "services")
			keys(v, func(name string, _, _ *yaml.Node) { services[name] = true })
			if len(services) > maxServices {
				return &Error{File: src.name, Line: k.Line, Msg: fmt.Sprintf("more than %d services", maxServices)}
			}
		}
	}
	switch {
	case docs > maxDocuments:
		return &Error{File: last.name, Msg: fmt.Sprintf("more than %d YAML documents in all files", maxDocuments)}
	case nodes > maxNodes:
		return &Error{File: last.name, Msg: fmt.Sprintf("more than %d YAML nodes (aliases expanded) in all files", maxNodes)}
	}
	return nil
}

func loaderOptions(stack string) func(*loader.Options) {
	return func(o *loader.Options) {
		o.SetProjectName(stack, true)
		// Normalization adds what Compose needs and stack deploy does not
		// (an implicit default network, build defaults, depends_on); the
		// conversion adds what stack deploy adds.
		o.SkipNormalization = true
		// References are checked by the conversion, which can name the
		// file and line.
		o.SkipConsistencyCheck = true
		// env_file and label_file would be read from the local disk.
		o.SkipResolveEnvironment = true
		o.SkipResolveLabels = true
		o.ResolvePaths = false
		o.SkipInclude = true
		o.SkipExtends = true
		// stack deploy has no profiles: every service is deployed.
		o.Profiles = []string{"*"}
	}
}

var (
	falseSchemaRe = regexp.MustCompile(`(\S+)\.([^.\s]+) false schema`)
	bracketRe     = regexp.MustCompile(`\[([^\]\s'"]+)\]`)
)

// attribute turns a compose-go error into an *Error naming the file and,
// when a model path or YAML line is in the message, the line.
func attribute(err error, srcs []*source, details types.ConfigDetails, stack string) error {
	msg := err.Error()
	var src *source
	for _, s := range srcs {
		for _, p := range []string{"validating " + s.name + ": ", "failed to parse " + s.name + ": "} {
			if src == nil && strings.Contains(msg, p) {
				src, msg = s, strings.Replace(msg, p, "", 1)
			}
		}
	}
	// Errors decoding the merged model into compose-go's types (a duration or
	// size out of range, a negative count) do not say which file either.
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s):\n\n")
	if src == nil && len(srcs) == 1 {
		src = srcs[0]
	}
	if src == nil {
		// Merge-time errors (interpolation, type casts) do not say which
		// file they come from: load growing prefixes of the list until one
		// fails; its last file is the culprit. Decoding errors show only
		// when the whole project is loaded.
		for _, load := range []func(types.ConfigDetails) error{
			func(sub types.ConfigDetails) error {
				_, err := loader.LoadModelWithContext(context.Background(), sub, loaderOptions(stack))
				return err
			},
			func(sub types.ConfigDetails) error {
				_, err := loader.LoadWithContext(context.Background(), sub, loaderOptions(stack))
				return err
			},
		} {
			for i := range srcs {
				if src != nil {
					break
				}
				sub := details
				sub.ConfigFiles = details.ConfigFiles[:i+1]
				if _, perr := captureLogs(func() error { return load(sub) }); perr != nil {
					src = srcs[i]
				}
			}
		}
	}
	e := &Error{Msg: falseSchemaRe.ReplaceAllString(msg, `$1: unknown key "$2"`)}
	if src == nil {
		return e
	}
	e.File = src.name
	// Decoding errors write paths as services[web].deploy.
	if m := modelPathRe.FindStringSubmatch(bracketRe.ReplaceAllString(msg, ".$1")); m != nil {
		e.Line, _ = src.find(strings.Split(m[1], "."))
	}
	if e.Line == 0 {
		e.Line = errLine(msg)
	}
	return e
}

func digest(v any) string { return keyedDigest(nil, v) }

// keyedDigest is "sha256:<hex>" of v's JSON: HMAC-SHA256 with key, or plain
// SHA-256 when key is empty (the prefix stays: both are SHA-256 based).
func keyedDigest(key []byte, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain data structures are hashed
	}
	return "sha256:" + hex.EncodeToString(keyedSum(key, b))
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
