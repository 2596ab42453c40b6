package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"
)

// TestSecretNamesAreKeyed: secret and config names (and the revision, which
// covers secret data) carry a keyed hash, so that someone who can list the
// swarm's secrets cannot confirm a guess of their data offline.
func TestSecretNamesAreKeyed(t *testing.T) {
	yml := "services:\n  web:\n    image: nginx\n    secrets: [pw]\n    configs: [conf]\nsecrets:\n  pw:\n    file: ./pw\nconfigs:\n  conf:\n    file: ./conf\n"
	files := []File{{Name: "a.yml", Content: []byte(yml)}}
	opts := func(key string) Options {
		o := Options{StackName: "st", SecretData: map[string][]byte{"pw": []byte("hunter2")}, ConfigData: map[string][]byte{"conf": []byte("listen 80")}}
		if key != "" {
			o.NameKey = []byte(key)
		}
		return o
	}
	unsalted := func(name, data string) string {
		sum := sha256.Sum256([]byte(data))
		return name + "-" + hex.EncodeToString(sum[:])[:10]
	}
	nameRe := regexp.MustCompile(`^st_(pw|conf)-[0-9a-f]{10}$`)
	c := NewCache(4)
	render := func(key string) *Stack {
		t.Helper()
		st, err := c.Render(files, opts(key))
		if err != nil {
			t.Fatal(err)
		}
		direct, err := Render(files, opts(key))
		if err != nil {
			t.Fatal(err)
		}
		if direct.Revision != st.Revision || direct.Secrets[0].Name != st.Secrets[0].Name {
			t.Fatalf("the cache returned another key's stack: %s vs %s", st.Secrets[0].Name, direct.Secrets[0].Name)
		}
		return st
	}
	a1, a2, b := render("key-a"), render("key-a"), render("key-b")
	for _, st := range []*Stack{a1, b} {
		for _, n := range []string{st.Secrets[0].Name, st.Configs[0].Name} {
			if !nameRe.MatchString(n) {
				t.Errorf("name %q is not <name>-<10 hex digits>", n)
			}
		}
	}
	if a1.Secrets[0].Name != a2.Secrets[0].Name || a1.Configs[0].Name != a2.Configs[0].Name || a1.Revision != a2.Revision {
		t.Error("the same key and data give different names or revisions")
	}
	if a1.Secrets[0].Name == b.Secrets[0].Name || a1.Configs[0].Name == b.Configs[0].Name {
		t.Errorf("different keys give the same names: %s %s", a1.Secrets[0].Name, a1.Configs[0].Name)
	}
	if a1.Revision == b.Revision {
		t.Error("different keys give the same revision, which covers the secret data")
	}
	if a1.Secrets[0].Name == unsalted("st_pw", "hunter2") || a1.Configs[0].Name == unsalted("st_conf", "listen 80") {
		t.Error("a keyed name is the unsalted sha256 prefix")
	}
	if ref := a1.Services[0].Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName; ref != a1.Secrets[0].Name {
		t.Errorf("the service refers to %s, the secret is %s", ref, a1.Secrets[0].Name)
	}
	t.Run("without a key, the documented unkeyed default", func(t *testing.T) {
		st := render("")
		if st.Secrets[0].Name != unsalted("st_pw", "hunter2") {
			t.Errorf("name %s", st.Secrets[0].Name)
		}
	})
}
