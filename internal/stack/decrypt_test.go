package stack

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	sopspgp "github.com/getsops/sops/v3/pgp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

func decryptionSecret(data map[string][]byte) (*swarmv1.Decryption, *corev1.Secret) {
	return &swarmv1.Decryption{Provider: "sops", SecretRef: &swarmv1.LocalObjectReference{Name: "sops-keys"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sops-keys"}, Data: data}
}

func TestSopsFilesOfEveryFormatDecryptInMemory(t *testing.T) {
	identity, mk := testkit.AgeKey(t)
	d, err := newDecryptor(decryptionSecret(map[string][]byte{"prod.agekey": []byte(identity), "other": []byte("ignored")}))
	if err != nil {
		t.Fatal(err)
	}
	const planted = "s3cr3t-planted-value"
	for name, plain := range map[string]string{
		"secrets/db.yaml":  "password: " + planted + "\nuser: app\n",
		"secrets/db.json":  `{"password": "` + planted + `", "port": 5432}`,
		"config/app.env":   "DB_PASSWORD=" + planted + "\nLOG_LEVEL=debug\n",
		"secrets/db.txt":   planted + "\n",
		"secrets/cert.pem": "-----BEGIN KEY-----\n" + planted + "\n-----END KEY-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			enc := testkit.SopsEncrypt(t, name, []byte(plain), mk)
			if bytes.Contains(enc, []byte(planted)) {
				t.Fatal("the test's encryption left the value in clear")
			}
			got, sensitive, err := d.open(name, enc)
			if err != nil {
				t.Fatal(err)
			}
			if !samePlain(name, got, []byte(plain)) {
				t.Fatalf("decrypted %q, want %q", got, plain)
			}
			found := false
			for _, s := range sensitive {
				found = found || strings.Contains(s, planted)
			}
			if !found {
				t.Fatalf("the decrypted value is not among the values to redact: %q", sensitive)
			}
		})
	}
	// A file SOPS did not encrypt comes back as it is, and adds nothing to redact.
	for name, plain := range map[string]string{"a.env": "A=1\n", "b.yaml": "a: 1\n", "c.txt": "plain", "d.json": `{"a": 1}`} {
		got, sensitive, err := d.open(name, []byte(plain))
		if err != nil || string(got) != plain || len(sensitive) != 0 {
			t.Fatalf("%s: %q %v %v", name, got, sensitive, err)
		}
	}
}

// samePlain compares decrypted and original content as their format reads them: SOPS
// writes YAML and JSON out again in its own layout.
func samePlain(name string, a, b []byte) bool {
	if strings.HasSuffix(name, ".json") {
		var x, y any
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && jsonEqual(x, y)
	}
	return string(a) == string(b)
}

func jsonEqual(x, y any) bool {
	a, _ := json.Marshal(x)
	b, _ := json.Marshal(y)
	return string(a) == string(b)
}

func TestSopsFileNoKeyOpensIsDecryptionFailedNamingTheFile(t *testing.T) {
	_, mk := testkit.AgeKey(t)
	otherIdentity, _ := testkit.AgeKey(t)
	enc := testkit.SopsEncrypt(t, "secrets/db.txt", []byte("hunter2-value"), mk)
	cases := map[string]struct {
		dec  *swarmv1.Decryption
		sec  *corev1.Secret
		want string
	}{
		"another age key": func() struct {
			dec  *swarmv1.Decryption
			sec  *corev1.Secret
			want string
		} {
			d, s := decryptionSecret(map[string][]byte{"k.agekey": []byte(otherIdentity)})
			return struct {
				dec  *swarmv1.Decryption
				sec  *corev1.Secret
				want string
			}{d, s, `"secrets/db.txt": no key of Secret "sops-keys" opens it (encrypted for: age)`}
		}(),
		"no spec.decryption": {nil, nil, `"secrets/db.txt" is encrypted with SOPS and spec.decryption is not set`},
		"no Secret named":    {&swarmv1.Decryption{Provider: "sops"}, nil, `spec.decryption names no Secret`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := newDecryptor(tc.dec, tc.sec)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := d.open("secrets/db.txt", enc)
			if !errors.Is(err, ErrDecryptionFailed) || !strings.Contains(err.Error(), tc.want) || out != nil {
				t.Fatalf("got %q, %v; want ErrDecryptionFailed saying %s", out, err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Fatalf("the message shows a secret: %v", err)
			}
		})
	}
}

// TestSopsMACIsChecked: a value removed from an encrypted file after encryption (each
// remaining value still decrypts) is refused by the MAC.
func TestSopsMACIsChecked(t *testing.T) {
	identity, mk := testkit.AgeKey(t)
	d, _ := newDecryptor(decryptionSecret(map[string][]byte{"k.agekey": []byte(identity)}))
	enc := testkit.SopsEncrypt(t, "app.env", []byte("A=first-value\nB=second-value\n"), mk)
	var kept []string
	for _, line := range strings.Split(string(enc), "\n") {
		if !strings.HasPrefix(line, "B=") {
			kept = append(kept, line)
		}
	}
	_, _, err := d.open("app.env", []byte(strings.Join(kept, "\n")))
	if !errors.Is(err, ErrDecryptionFailed) || !strings.Contains(err.Error(), "MAC does not match") {
		t.Fatalf("tampered file: %v", err)
	}
	if _, _, err := d.open("app.env", enc); err != nil {
		t.Fatalf("the file as encrypted: %v", err)
	}
}

func TestSopsPGPKeyFromArmoredSecret(t *testing.T) {
	entity, err := openpgp.NewEntity("swarm-operator test", "", "test@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var asc bytes.Buffer
	w, err := armor.Encode(&asc, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := entity.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	// The data key encrypted to the PGP key as SOPS's PGP key source does (armored).
	fp := strings.ToUpper(hex.EncodeToString(entity.PrimaryKey.Fingerprint))
	testkit.PGPRecipients[fp] = entity
	mk := sopspgp.NewMasterKeyFromFingerprint(fp)
	enc := testkit.SopsEncrypt(t, "db.yaml", []byte("password: pgp-protected-value\n"), mk)
	d, err := newDecryptor(decryptionSecret(map[string][]byte{"team.asc": asc.Bytes()}))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := d.open("db.yaml", enc)
	if err != nil || string(got) != "password: pgp-protected-value\n" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := newDecryptor(decryptionSecret(map[string][]byte{"broken.asc": []byte("not a key")})); err == nil || !strings.Contains(err.Error(), `key "broken.asc"`) {
		t.Fatalf("a broken key: %v", err)
	}
}
