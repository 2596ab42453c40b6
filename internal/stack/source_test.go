package stack

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"

	"github.com/swarmops/swarm-operator/internal/testkit"
)

func TestArtifactPath(t *testing.T) {
	for name, tc := range map[string]struct {
		base, p, want string
		bad           bool
	}{
		"relative to the first compose file": {base: "stacks/numbers", p: "./config/a.json", want: "stacks/numbers/config/a.json"},
		"up but still inside":                {base: "stacks/numbers", p: "../shared/a.env", want: "stacks/shared/a.env"},
		"to the root exactly":                {base: "stacks", p: "../a.yml", want: "a.yml"},
		"out by one":                         {base: "stacks", p: "../../a.yml", bad: true},
		"absolute":                           {base: ".", p: "/etc/passwd", bad: true},
		"backslashes":                        {base: ".", p: `..\..\x`, bad: true},
		"empty":                              {base: ".", p: "", bad: true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := artifactPath(tc.base, tc.p)
			if tc.bad != (err != nil) || got != tc.want {
				t.Fatalf("artifactPath(%q, %q) = %q, %v", tc.base, tc.p, got, err)
			}
		})
	}
}

func TestArtifactStoreEvictsLeastRecentlyUsed(t *testing.T) {
	srv := testkit.NewArtifactServer(t)
	store, err := NewArtifactStore(ArtifactStoreOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	store.max = 2
	arts := make([]*meta.Artifact, 3)
	for i := range arts {
		arts[i] = srv.Publish(t, "r", "main@sha1:"+string(rune('a'+i)), map[string]string{"f": string(rune('a' + i))}, nil)
	}
	ctx := context.Background()
	for _, a := range []*meta.Artifact{arts[0], arts[1], arts[0], arts[2], arts[0]} {
		if _, err := store.Open(ctx, a); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct use times
	}
	// a, b fetched; a reused; c evicts b (least recent); a still cached.
	if n := store.Fetches(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
	if _, err := store.Open(ctx, arts[1]); err != nil || store.Fetches() != 4 {
		t.Fatalf("evicted artifact fetched again: %v, fetches %d", err, store.Fetches())
	}
	if _, err := store.Open(ctx, &meta.Artifact{URL: srv.URL + "/x", Digest: "../../etc"}); err == nil {
		t.Fatal("a digest that is not algorithm:hex must never become a path")
	}
}

func TestArtifactStoreRemovesItsTemporaryDirectoryWhenStopped(t *testing.T) {
	store, err := NewArtifactStore(ArtifactStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := testkit.NewArtifactServer(t)
	if _, err := store.Open(context.Background(), srv.Publish(t, "r", "main@sha1:a", map[string]string{"f": "x"}, nil)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := store.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(store.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("directory %s still there: %v", store.dir, err)
	}
}
