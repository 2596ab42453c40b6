package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/http/fetch"
	"github.com/fluxcd/pkg/tar"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// ErrSourceNotReady marks a Flux source that has no usable artifact now: none yet, not
// Ready, or one that could not be fetched or verified. The stack keeps what it runs.
var ErrSourceNotReady = errors.New("source not ready")

// SourceRecheck is how soon a stack whose source is not ready looks again; the source
// watch usually brings it back first.
const SourceRecheck = 30 * time.Second

// Limits of one artifact, as Flux's consumers set them: the download and what it unpacks to.
const (
	defaultArtifactMaxDownload = 50 << 20
	defaultArtifactMaxUntar    = 100 << 20
	// artifactCacheEntries is how many unpacked artifacts stay on disk.
	artifactCacheEntries = 32
)

// FluxSource is what the four source kinds have in common.
type FluxSource interface {
	client.Object
	GetArtifact() *meta.Artifact
	GetConditions() []metav1.Condition
}

// NewFluxSource returns an empty object of a spec.sourceRef kind.
func NewFluxSource(kind string) (FluxSource, error) {
	switch kind {
	case sourcev1.GitRepositoryKind:
		return &sourcev1.GitRepository{}, nil
	case sourcev1.OCIRepositoryKind:
		return &sourcev1.OCIRepository{}, nil
	case sourcev1.BucketKind:
		return &sourcev1.Bucket{}, nil
	case sourcev1.ExternalArtifactKind:
		return &sourcev1.ExternalArtifact{}, nil
	}
	return nil, fmt.Errorf("spec.sourceRef.kind %q: want GitRepository, OCIRepository, Bucket or ExternalArtifact", kind)
}

// Sources is how the stack controller reads Flux sources and references to objects of
// other namespaces.
type Sources struct {
	// Store fetches and keeps artifacts; nil refuses every spec.sourceRef.
	Store *ArtifactStore
	// NoCrossNamespaceRefs refuses a sourceRef or dependsOn in another namespace.
	NoCrossNamespaceRefs bool
}

// SourceKey is the index value of a stack's sourceRef: "Kind/namespace/name".
func SourceKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// SourceRefOf is the namespaced name of the stack's source, the namespace defaulted.
func SourceRefOf(s *swarmv1.SwarmStack) ktypes.NamespacedName {
	ns := s.Spec.SourceRef.Namespace
	if ns == "" {
		ns = s.Namespace
	}
	return ktypes.NamespacedName{Namespace: ns, Name: s.Spec.SourceRef.Name}
}

// artifactRoot is an unpacked artifact of a stack's source.
type artifactRoot struct {
	dir      string // the unpacked artifact
	source   string // "GitRepository ns/name", for messages
	revision string // the artifact's revision, e.g. main@sha1:...
	digest   string // the artifact's content digest, e.g. sha256:...
}

// openSource finds the stack's source and its unpacked artifact.
func (src Sources) openSource(ctx context.Context, c client.Reader, s *swarmv1.SwarmStack) (*artifactRoot, error) {
	ref := SourceRefOf(s)
	if src.NoCrossNamespaceRefs && ref.Namespace != s.Namespace {
		return nil, fmt.Errorf("spec.sourceRef.namespace %q: references to other namespaces are refused (--no-cross-namespace-refs)", ref.Namespace)
	}
	obj, err := NewFluxSource(s.Spec.SourceRef.Kind)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s %s", s.Spec.SourceRef.Kind, ref)
	if src.Store == nil {
		return nil, fmt.Errorf("spec.sourceRef: %s: this operator reads no Flux sources", name)
	}
	if err := c.Get(ctx, ref, obj); err != nil {
		if apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrSourceNotReady, name)
		}
		return nil, err
	}
	art := obj.GetArtifact()
	if ready := apimeta.FindStatusCondition(obj.GetConditions(), meta.ReadyCondition); ready != nil && ready.Status == metav1.ConditionFalse {
		// A source that failed its last fetch may still hold an older artifact; Flux's
		// own consumers wait too, rather than deploy what the source disowns.
		return nil, fmt.Errorf("%w: %s is not ready (%s): %s", ErrSourceNotReady, name, ready.Reason, ready.Message)
	}
	if art == nil {
		return nil, fmt.Errorf("%w: %s has no artifact yet", ErrSourceNotReady, name)
	}
	dir, err := src.Store.Open(ctx, art)
	if err != nil {
		return nil, fmt.Errorf("%w: %s, artifact %s: %w", ErrSourceNotReady, name, art.Revision, err)
	}
	return &artifactRoot{dir: dir, source: name, revision: art.Revision, digest: art.Digest}, nil
}

// artifactPath checks a path given relative to base inside the artifact and returns it
// relative to the artifact's root; paths that leave the artifact are refused.
func artifactPath(base, p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if path.IsAbs(p) || filepath.IsAbs(p) || strings.Contains(p, `\`) {
		return "", fmt.Errorf("path %q is absolute: paths are relative to the artifact", p)
	}
	joined := path.Clean(path.Join(base, p))
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return "", fmt.Errorf("path %q leaves the artifact", p)
	}
	return joined, nil
}

// readFile reads a file of the artifact. os.Root refuses, besides "..", symlinks that
// lead out of the artifact (the fetch skips symlinks already; this holds regardless).
func (a *artifactRoot) readFile(rel string) ([]byte, error) {
	root, err := os.OpenRoot(a.dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }()
	data, err := root.ReadFile(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %q is not in the artifact of %s at revision %s", ErrSourceMissing, rel, a.source, a.revision)
	case err != nil:
		// The error names the path only: no content of the artifact.
		return nil, fmt.Errorf("reading %q of the artifact of %s: %w", rel, a.source, err)
	}
	return data, nil
}

// ArtifactStore fetches source artifacts with Flux's fetcher (digest verified before
// anything is unpacked, size-limited, symlinks skipped) and keeps them unpacked by
// digest: an unchanged artifact is not fetched again.
type ArtifactStore struct {
	dir     string
	fetcher *fetch.ArchiveFetcher
	max     int

	mu       sync.Mutex
	fetching map[string]*sync.Mutex // one fetch per digest at a time
	used     map[string]time.Time   // digest dir -> last use, for eviction
	fetches  int                    // downloads made, for tests
}

// ArtifactStoreOptions tune an ArtifactStore; zero values take the defaults.
type ArtifactStoreOptions struct {
	// Dir keeps the unpacked artifacts; default a new directory under os.TempDir.
	Dir string
	// MaxDownload and MaxUntar limit an artifact's size, packed and unpacked, in bytes.
	MaxDownload, MaxUntar int
	// Retries of a download that met a server error.
	Retries int
	// HostOverride replaces the host of artifact URLs: SOURCE_CONTROLLER_LOCALHOST, as
	// Flux's controllers honour it, for an operator running outside the cluster.
	HostOverride string
	// Logger is handed to the HTTP client (a logr.Logger logs its errors only).
	Logger any
}

// NewArtifactStore makes the store and its directory.
func NewArtifactStore(o ArtifactStoreOptions) (*ArtifactStore, error) {
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "swarm-operator-artifacts-")
		if err != nil {
			return nil, err
		}
		o.Dir = d
	} else if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if o.MaxDownload <= 0 {
		o.MaxDownload = defaultArtifactMaxDownload
	}
	if o.MaxUntar <= 0 {
		o.MaxUntar = defaultArtifactMaxUntar
	}
	opts := []fetch.Option{
		fetch.WithRetries(o.Retries), fetch.WithMaxDownloadSize(o.MaxDownload),
		fetch.WithUntar(tar.WithMaxUntarSize(o.MaxUntar)), fetch.WithHostnameOverwrite(o.HostOverride),
	}
	if o.Logger != nil {
		opts = append(opts, fetch.WithLogger(o.Logger))
	}
	return &ArtifactStore{
		dir: o.Dir, fetcher: fetch.New(opts...), max: artifactCacheEntries,
		fetching: map[string]*sync.Mutex{}, used: map[string]time.Time{},
	}, nil
}

// digestRe is the form Flux gives artifact digests; anything else never becomes a path.
var digestRe = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// Open returns the directory of the unpacked artifact, fetching it the first time.
func (a *ArtifactStore) Open(ctx context.Context, art *meta.Artifact) (string, error) {
	if !digestRe.MatchString(art.Digest) {
		return "", fmt.Errorf("artifact digest %q is not of the form algorithm:hex", art.Digest)
	}
	key := strings.ReplaceAll(art.Digest, ":", "-")
	final := filepath.Join(a.dir, key)

	a.mu.Lock()
	lock, ok := a.fetching[key]
	if !ok {
		lock = &sync.Mutex{}
		a.fetching[key] = lock
	}
	a.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()

	if _, err := os.Stat(final); err == nil {
		a.touch(key)
		return final, nil
	}
	// Unpack beside the final place and rename: a half-unpacked artifact is never used.
	tmp, err := os.MkdirTemp(a.dir, ".fetch-")
	if err != nil {
		return "", err
	}
	if err := a.fetcher.FetchWithContext(ctx, art.URL, art.Digest, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		if errors.Is(err, fetch.ErrFileNotFound) {
			return "", errors.New("the source no longer serves it (404); waiting for its next artifact")
		}
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	a.mu.Lock()
	a.fetches++
	a.mu.Unlock()
	a.touch(key)
	return final, nil
}

// touch records a use and evicts the least recently used artifacts past the limit. An
// evicted artifact in use by a pass is fetched again by the next one.
func (a *ArtifactStore) touch(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[key] = time.Now()
	if len(a.used) <= a.max {
		return
	}
	keys := make([]string, 0, len(a.used))
	for k := range a.used {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y string) int { return a.used[x].Compare(a.used[y]) })
	for _, k := range keys[:len(keys)-a.max] {
		if k == key {
			continue
		}
		_ = os.RemoveAll(filepath.Join(a.dir, k))
		delete(a.used, k)
	}
}

// Start waits for the manager to stop and removes the store's directory: Setup adds the
// store as a runnable only when the directory is a temporary one of its own.
func (a *ArtifactStore) Start(ctx context.Context) error {
	<-ctx.Done()
	return os.RemoveAll(a.dir)
}

// NeedLeaderElection is false: every replica keeps (and removes) its own cache.
func (a *ArtifactStore) NeedLeaderElection() bool { return false }

// Fetches is how many artifacts were downloaded so far.
func (a *ArtifactStore) Fetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetches
}
