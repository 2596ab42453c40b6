package testkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ArtifactServer serves artifacts by path and counts the downloads.
type ArtifactServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	gets  int
}

// NewArtifactServer is an artifact server that stops with the test.
func NewArtifactServer(t *testing.T) *ArtifactServer {
	a := &ArtifactServer{files: map[string][]byte{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.gets++
		data, ok := a.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(a.Close)
	return a
}

// Publish serves a tar.gz of files (symlinks: name -> target) and returns the artifact
// source-controller would write in status.
func (a *ArtifactServer) Publish(t testing.TB, name, revision string, files map[string]string, symlinks map[string]string) *meta.Artifact {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(content))
	}
	for n, target := range symlinks {
		if err := tw.WriteHeader(&tar.Header{Name: n, Linkname: target, Mode: 0o777, Typeflag: tar.TypeSymlink}); err != nil {
			t.Fatal(err)
		}
	}
	_ = tw.Close()
	_ = gz.Close()
	sum := sha256.Sum256(buf.Bytes())
	p := "/gitrepository/" + name + "/" + hex.EncodeToString(sum[:8]) + ".tar.gz"
	a.mu.Lock()
	a.files[p] = buf.Bytes()
	a.mu.Unlock()
	size := int64(buf.Len())
	return &meta.Artifact{
		Path: p, URL: a.URL + p, Revision: revision, Digest: "sha256:" + hex.EncodeToString(sum[:]),
		LastUpdateTime: metav1.Now(), Size: &size,
	}
}

func (a *ArtifactServer) Downloads() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gets
}
