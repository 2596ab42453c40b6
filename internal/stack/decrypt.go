package stack

// SOPS decryption of files read from a source artifact, in memory, with the keys of the
// stack's spec.decryption Secret (Flux's key names: *.agekey, *.asc).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/stores/dotenv"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// ErrDecryptionFailed marks a file of the artifact that is encrypted with SOPS and that
// no key of spec.decryption opens, or whose MAC does not match.
var ErrDecryptionFailed = errors.New("decryption failed")

// decryptor opens SOPS files with the identities of one Secret. Nothing it opens is
// written anywhere: the plaintext goes back to the renderer only.
type decryptor struct {
	enabled    bool   // spec.decryption is set
	secret     string // the Secret's name, for messages
	identities sopsage.ParsedIdentities
	pgp        openpgp.EntityList
}

// newDecryptor reads the keys of the decryption Secret. A key that does not parse is
// named by its Secret key, never shown.
func newDecryptor(d *swarmv1.Decryption, sec *corev1.Secret) (*decryptor, error) {
	out := &decryptor{enabled: d != nil}
	if sec == nil {
		return out, nil
	}
	out.secret = sec.Name
	for name, v := range sec.Data {
		switch {
		case strings.HasSuffix(name, ".agekey"):
			if err := out.identities.Import(string(v)); err != nil {
				return nil, fmt.Errorf("%w: spec.decryption Secret %q, key %q: not an age identity", ErrDecryptionFailed, sec.Name, name)
			}
		case strings.HasSuffix(name, ".asc"):
			ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(v))
			if err != nil {
				return nil, fmt.Errorf("%w: spec.decryption Secret %q, key %q: not an armored PGP key", ErrDecryptionFailed, sec.Name, name)
			}
			out.pgp = append(out.pgp, ring...)
		}
	}
	return out, nil
}

// sopsStore is how SOPS stores a file of that name: by extension, as the sops command
// chooses; anything else is SOPS's binary format (JSON with the data in one value).
func sopsStore(name string) sops.Store {
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

func sopsFormat(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return "yaml"
	case ".json":
		return "json"
	case ".env":
		return "dotenv"
	}
	return "binary"
}

// open returns the plaintext of a file of the artifact, and the values a message must
// never show. A file SOPS did not encrypt comes back as it is.
func (d *decryptor) open(name string, data []byte) ([]byte, []string, error) {
	store := sopsStore(name)
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		if errors.Is(err, sops.MetadataNotFound) || !bytes.Contains(data, []byte("ENC[AES256_GCM,")) {
			// Not a SOPS file (no metadata, or not of the store's format): plaintext.
			return data, nil, nil
		}
		return nil, nil, fmt.Errorf("%w: %q holds SOPS-encrypted values but is not a SOPS file of its format (%s)", ErrDecryptionFailed, name, sopsFormat(name))
	}
	if !d.enabled {
		return nil, nil, fmt.Errorf("%w: %q is encrypted with SOPS and spec.decryption is not set", ErrDecryptionFailed, name)
	}
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{d}, nil)
	if err != nil {
		if d.secret == "" {
			return nil, nil, fmt.Errorf("%w: %q: spec.decryption names no Secret with keys (%s)", ErrDecryptionFailed, name, keyTypes(tree.Metadata))
		}
		return nil, nil, fmt.Errorf("%w: %q: no key of Secret %q opens it (%s)", ErrDecryptionFailed, name, d.secret, keyTypes(tree.Metadata))
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %q: a value does not decrypt with its data key", ErrDecryptionFailed, name)
	}
	want, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || want != mac {
		return nil, nil, fmt.Errorf("%w: %q: its MAC does not match its content (edited after encryption?)", ErrDecryptionFailed, name)
	}
	plain, err := store.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %q: %s", ErrDecryptionFailed, name, "the decrypted content cannot be written out in its format")
	}
	return plain, sensitiveValues(tree.Branches, plain), nil
}

// sensitiveValues are the decrypted leaves and the whole plaintext: a secret file's data
// is one value, an env_file's values become variables one by one.
func sensitiveValues(branches sops.TreeBranches, plain []byte) []string {
	out := []string{string(plain), strings.TrimSpace(string(plain))}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case sops.TreeBranch:
			for _, item := range v {
				walk(item.Value)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			if len(v) >= 4 {
				out = append(out, v)
			}
		}
	}
	for _, b := range branches {
		walk(b)
	}
	return out
}

// keyTypes says which kinds of keys the file was encrypted for, for the message.
func keyTypes(m sops.Metadata) string {
	seen := map[string]bool{}
	var kinds []string
	for _, g := range m.KeyGroups {
		for _, k := range g {
			t := k.TypeToIdentifier()
			if !seen[t] {
				seen[t] = true
				kinds = append(kinds, t)
			}
		}
	}
	return "encrypted for: " + strings.Join(kinds, ", ")
}

// Decrypt and Encrypt make the decryptor SOPS's key service, in process: SOPS asks it for
// each master key of the file's key groups (and combines Shamir parts itself). Neither
// SOPS's local key service (it reads keys from the environment and from files) nor its
// PGP key source (keyrings on disk, or the gpg binary) keeps the keys in memory only.
func (d *decryptor) Decrypt(_ context.Context, req *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	switch k := req.GetKey().GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		if len(d.identities) == 0 {
			return nil, errors.New("no age identity")
		}
		mk := &sopsage.MasterKey{Recipient: k.AgeKey.GetRecipient(), EncryptedKey: string(req.GetCiphertext())}
		d.identities.ApplyToMasterKey(mk)
		plain, err := mk.Decrypt()
		if err != nil {
			return nil, err
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	case *keyservice.Key_PgpKey:
		if len(d.pgp) == 0 {
			return nil, errors.New("no PGP key")
		}
		block, err := armor.Decode(bytes.NewReader(req.GetCiphertext()))
		if err != nil {
			return nil, errors.New("the PGP data key is not armored")
		}
		md, err := openpgp.ReadMessage(block.Body, d.pgp, nil, nil)
		if err != nil {
			return nil, errors.New("no PGP key opens the data key")
		}
		plain, err := io.ReadAll(md.UnverifiedBody)
		if err != nil {
			return nil, err
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	}
	return nil, errors.New("key type not supported: only age and PGP keys are read from spec.decryption")
}

func (d *decryptor) Encrypt(context.Context, *keyservice.EncryptRequest, ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("the operator encrypts nothing")
}
