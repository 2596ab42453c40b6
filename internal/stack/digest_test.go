package stack

import (
	"testing"

	"github.com/swarmops/swarm-operator/internal/compose"
)

// TestRenderDigestCoversWhatARenderDependsOn: each part of a render's identity (inputs,
// source artifact, revision, services, operator build, key) changes the digest.
func TestRenderDigestCoversWhatARenderDependsOn(t *testing.T) {
	in := func() *Inputs {
		return &Inputs{
			Files:        []compose.File{{Name: "docker-compose.yml", Content: []byte("services: {api: {image: a}}")}},
			Opts:         compose.Options{StackName: "numbers", Variables: map[string]string{"TAG": "v1"}, SecretData: map[string][]byte{"pw": []byte("hunter22")}},
			SourceDigest: "sha256:aa",
		}
	}
	svcs := []ServiceKey{{Name: "numbers_api", Hash: "sha256:11"}}
	base := RenderDigest([]byte("k"), in(), "baseline", "sha256:r1", svcs)
	if again := RenderDigest([]byte("k"), in(), "baseline", "sha256:r1", svcs); again != base {
		t.Fatalf("the same render gave two digests: %s, %s", base, again)
	}
	variants := map[string]func() string{
		"secret data": func() string {
			i := in()
			i.Opts.SecretData["pw"] = []byte("hunter23")
			return RenderDigest([]byte("k"), i, "baseline", "sha256:r1", svcs)
		},
		"source digest": func() string {
			i := in()
			i.SourceDigest = "sha256:bb"
			return RenderDigest([]byte("k"), i, "baseline", "sha256:r1", svcs)
		},
		"security policy": func() string { return RenderDigest([]byte("k"), in(), "restricted", "sha256:r1", svcs) },
		"revision":        func() string { return RenderDigest([]byte("k"), in(), "baseline", "sha256:r2", svcs) },
		"services": func() string {
			return RenderDigest([]byte("k"), in(), "baseline", "sha256:r1", []ServiceKey{{Name: "numbers_api", Hash: "sha256:12"}})
		},
		"no services": func() string { return RenderDigest([]byte("k"), in(), "baseline", "sha256:r1", nil) },
		"key":         func() string { return RenderDigest([]byte("other"), in(), "baseline", "sha256:r1", svcs) },
		"operator build": func() string {
			saved := operatorBuild
			defer func() { operatorBuild = saved }()
			operatorBuild += " next"
			return RenderDigest([]byte("k"), in(), "baseline", "sha256:r1", svcs)
		},
	}
	for name, digest := range variants {
		if digest() == base {
			t.Errorf("a different %s gave the same digest", name)
		}
	}
}
