package testkit

// SOPS files for tests, encrypted with the sops library itself as `sops encrypt` would.

import (
	"bytes"
	"crypto/rand"
	"path"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keys"
	sopspgp "github.com/getsops/sops/v3/pgp"
	"github.com/getsops/sops/v3/stores/dotenv"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
)

// sopsStoreFor picks the store by extension, as the sops command does.
func sopsStoreFor(name string) sops.Store {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return sopsyaml.NewStore(&config.YAMLStoreConfig{})
	case ".json":
		return sopsjson.NewStore(&config.JSONStoreConfig{})
	case ".env":
		return dotenv.NewStore(&config.DotenvStoreConfig{})
	}
	return sopsjson.NewBinaryStore(&config.JSONBinaryStoreConfig{})
}

// SopsEncrypt encrypts plain as `sops encrypt` would for a file of that name, for the
// given master keys, with the sops library itself.
func SopsEncrypt(t testing.TB, name string, plain []byte, masterKeys ...keys.MasterKey) []byte {
	t.Helper()
	store := sopsStoreFor(name)
	branches, err := store.LoadPlainFile(plain)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		t.Fatal(err)
	}
	for _, k := range masterKeys {
		if pk, ok := k.(*sopspgp.MasterKey); ok {
			// SOPS's PGP key source encrypts with a keyring on disk or gpg: in memory here.
			if err := pgpEncryptTo(pk, dataKey); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := k.Encrypt(dataKey); err != nil {
			t.Fatal(err)
		}
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups: []sops.KeyGroup{masterKeys}, Version: "3.13.3", LastModified: time.Now().UTC(),
	}}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		t.Fatal(err)
	}
	out, err := store.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// AgeKey is a new age identity (as a *.agekey Secret value) and a master key for it.
func AgeKey(t testing.TB) (string, *sopsage.MasterKey) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := sopsage.MasterKeyFromRecipient(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	return id.String() + "\n", mk
}

// PGPRecipients are the tests' PGP keys by the fingerprint their master keys name.
var PGPRecipients = map[string]*openpgp.Entity{}

func pgpEncryptTo(k *sopspgp.MasterKey, dataKey []byte) error {
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, "PGP MESSAGE", nil)
	if err != nil {
		return err
	}
	pw, err := openpgp.Encrypt(aw, []*openpgp.Entity{PGPRecipients[k.Fingerprint]}, nil, nil, nil)
	if err != nil {
		return err
	}
	if _, err := pw.Write(dataKey); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	k.EncryptedKey = buf.String()
	return nil
}
