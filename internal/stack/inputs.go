package stack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
)

// ErrSourceMissing marks a referenced ConfigMap, Secret or key that does not exist yet.
var ErrSourceMissing = errors.New("source not found")

// Inputs is everything a stack's rendering and apply read from Kubernetes.
type Inputs struct {
	Files        []compose.File
	Opts         compose.Options
	RegistryAuth map[string]registry.AuthConfig // by registry host
	// Sensitive holds every value read from a Secret, to be redacted from messages.
	Sensitive []string
	// SourceRevision is the revision of the spec.sourceRef artifact read, if any.
	SourceRevision string
	// SourceDigest is that artifact's content digest: what file: and env_file: read.
	SourceDigest string

	// decryptErr is the last file of the artifact that could not be decrypted: the
	// renderer reads files, and its error keeps only the message.
	decryptErr error
}

// DecryptionFailure is why a file read while rendering could not be decrypted (an error
// wrapping ErrDecryptionFailed), nil when none failed. Sensitive holds the values of the
// files that were decrypted once the render is done.
func (in *Inputs) DecryptionFailure() error { return in.decryptErr }

// decryptorFor reads the keys of spec.decryption's Secret.
func decryptorFor(ctx context.Context, c client.Reader, s *swarmv1.SwarmStack) (*decryptor, error) {
	d := s.Spec.Decryption
	if d == nil || d.SecretRef == nil {
		return newDecryptor(d, nil)
	}
	var sec corev1.Secret
	if err := c.Get(ctx, ktypes.NamespacedName{Namespace: s.Namespace, Name: d.SecretRef.Name}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: spec.decryption Secret %q", ErrSourceMissing, d.SecretRef.Name)
		}
		return nil, err
	}
	return newDecryptor(d, &sec)
}

// GatherInputs reads the compose files, variables, secrets, configs and registry
// credentials the stack references; a stack with a spec.sourceRef is refused.
func GatherInputs(ctx context.Context, c client.Reader, s *swarmv1.SwarmStack, stackName string) (*Inputs, error) {
	return GatherInputsFrom(ctx, c, Sources{}, s, stackName)
}

// GatherInputsFrom is gatherInputs with access to Flux sources: files[].path, and file:
// and env_file: of the compose files, are read from the artifact of spec.sourceRef.
func GatherInputsFrom(ctx context.Context, c client.Reader, src Sources, s *swarmv1.SwarmStack, stackName string) (*Inputs, error) {
	in := &Inputs{Opts: compose.Options{StackName: stackName, Variables: map[string]string{},
		OrderByDependsOn: s.Spec.UpdateOrder == swarmv1.UpdateOrderDependsOn}}
	var art *artifactRoot
	if s.Spec.SourceRef != nil {
		var err error
		if art, err = src.openSource(ctx, c, s); err != nil {
			return nil, err
		}
		in.SourceRevision, in.SourceDigest = art.revision, art.digest
		// Relative paths of file: and env_file: are read from the directory of the first
		// compose file of the artifact, as docker compose reads them from the first -f file.
		base := "."
		for _, f := range s.Spec.Compose.Files {
			if f.Path != nil {
				if p, err := artifactPath(".", *f.Path); err == nil {
					base = path.Dir(p)
				}
				break
			}
		}
		dec, err := decryptorFor(ctx, c, s)
		if err != nil {
			return nil, err
		}
		in.Opts.ReadFile = func(p string) ([]byte, error) {
			rel, err := artifactPath(base, p)
			if err != nil {
				return nil, err
			}
			data, err := art.readFile(rel)
			if err != nil {
				return nil, err
			}
			plain, sensitive, err := dec.open(rel, data)
			if err != nil {
				in.decryptErr = err
				return nil, err
			}
			in.Sensitive = append(in.Sensitive, sensitive...)
			return plain, nil
		}
	}
	cms := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	getCM := func(name string) (*corev1.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		var cm corev1.ConfigMap
		if err := c.Get(ctx, ktypes.NamespacedName{Namespace: s.Namespace, Name: name}, &cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%w: ConfigMap %q", ErrSourceMissing, name)
			}
			return nil, err
		}
		cms[name] = &cm
		return &cm, nil
	}
	getSecret := func(name string) (*corev1.Secret, error) {
		if sec, ok := secrets[name]; ok {
			return sec, nil
		}
		var sec corev1.Secret
		if err := c.Get(ctx, ktypes.NamespacedName{Namespace: s.Namespace, Name: name}, &sec); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%w: Secret %q", ErrSourceMissing, name)
			}
			return nil, err
		}
		secrets[name] = &sec
		return &sec, nil
	}
	cmKey := func(ref swarmv1.KeySelector) ([]byte, error) {
		cm, err := getCM(ref.Name)
		if err != nil {
			return nil, err
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return []byte(v), nil
		}
		if v, ok := cm.BinaryData[ref.Key]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("%w: ConfigMap %q has no key %q", ErrSourceMissing, ref.Name, ref.Key)
	}

	for i, f := range s.Spec.Compose.Files {
		switch {
		case f.Inline != nil:
			in.Files = append(in.Files, compose.File{Name: f.Name, Content: []byte(*f.Inline)})
		case f.ConfigMapRef != nil:
			data, err := cmKey(*f.ConfigMapRef)
			if err != nil {
				return nil, err
			}
			in.Files = append(in.Files, compose.File{Name: f.Name, Content: data})
		case f.Path != nil:
			if art == nil {
				return nil, fmt.Errorf("spec.compose.files[%d] (%s): path needs spec.sourceRef", i, f.Name)
			}
			rel, err := artifactPath(".", *f.Path)
			if err != nil {
				return nil, fmt.Errorf("spec.compose.files[%d] (%s): %w", i, f.Name, err)
			}
			data, err := art.readFile(rel)
			if err != nil {
				return nil, fmt.Errorf("spec.compose.files[%d] (%s): %w", i, f.Name, err)
			}
			in.Files = append(in.Files, compose.File{Name: f.Name, Content: data})
		default:
			return nil, fmt.Errorf("spec.compose.files[%d] (%s): set inline, configMapRef or path", i, f.Name)
		}
	}
	for i, src := range s.Spec.Compose.VariablesFrom {
		switch {
		case src.ConfigMapRef != nil:
			cm, err := getCM(src.ConfigMapRef.Name)
			if err != nil {
				return nil, err
			}
			for k, v := range cm.Data {
				in.Opts.Variables[k] = v
			}
		case src.SecretRef != nil:
			sec, err := getSecret(src.SecretRef.Name)
			if err != nil {
				return nil, err
			}
			for k, v := range sec.Data {
				in.Opts.Variables[k] = string(v)
				in.Opts.SensitiveVariables = append(in.Opts.SensitiveVariables, k)
				in.Sensitive = append(in.Sensitive, string(v))
			}
		default:
			return nil, fmt.Errorf("spec.compose.variablesFrom[%d]: set configMapRef or secretRef", i)
		}
	}
	for k, v := range s.Spec.Compose.Variables {
		in.Opts.Variables[k] = v
	}
	if len(s.Spec.Secrets) > 0 {
		in.Opts.SecretData = map[string][]byte{}
	}
	for _, ref := range s.Spec.Secrets {
		sec, err := getSecret(ref.SecretRef.Name)
		if err != nil {
			return nil, err
		}
		v, ok := sec.Data[ref.SecretRef.Key]
		if !ok {
			return nil, fmt.Errorf("%w: Secret %q has no key %q", ErrSourceMissing, ref.SecretRef.Name, ref.SecretRef.Key)
		}
		in.Opts.SecretData[ref.Name] = v
		in.Sensitive = append(in.Sensitive, string(v))
	}
	if len(s.Spec.Configs) > 0 {
		in.Opts.ConfigData = map[string][]byte{}
	}
	for _, ref := range s.Spec.Configs {
		v, err := cmKey(ref.ConfigMapRef)
		if err != nil {
			return nil, err
		}
		in.Opts.ConfigData[ref.Name] = v
	}
	if ra := s.Spec.RegistryAuth; ra != nil {
		sec, err := getSecret(ra.SecretRef.Name)
		if err != nil {
			return nil, err
		}
		auths, err := parseDockerConfig(sec.Data[corev1.DockerConfigJsonKey])
		if err != nil {
			// Never include the Secret's content in the error: it ends up in status.
			return nil, fmt.Errorf("registryAuth Secret %q: %w", ra.SecretRef.Name, err)
		}
		in.RegistryAuth = auths
		for _, a := range auths {
			in.Sensitive = append(in.Sensitive, a.Password, a.IdentityToken, a.RegistryToken)
		}
	}
	return in, nil
}

// parseDockerConfig reads a kubernetes.io/dockerconfigjson payload.
func parseDockerConfig(data []byte) (map[string]registry.AuthConfig, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("key %q is missing or empty", corev1.DockerConfigJsonKey)
	}
	var cfg struct {
		Auths map[string]registry.AuthConfig `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, errors.New("not valid docker config JSON")
	}
	out := map[string]registry.AuthConfig{}
	for host, a := range cfg.Auths {
		if a.Username == "" && a.Auth != "" {
			if dec, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
				for i := range dec {
					if dec[i] == ':' {
						a.Username, a.Password = string(dec[:i]), string(dec[i+1:])
						break
					}
				}
			}
		}
		a.Auth = ""
		a.ServerAddress = host
		out[registryHost(host)] = a
	}
	return out, nil
}

// registryHost normalises "https://index.docker.io/v1/" and friends to a host name.
func registryHost(s string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(s) > len(p) && s[:len(p)] == p {
			s = s[len(p):]
		}
	}
	for i := range s {
		if s[i] == '/' {
			s = s[:i]
			break
		}
	}
	if s == "index.docker.io" || s == "registry-1.docker.io" {
		return "docker.io"
	}
	return s
}

// encodedAuthFor returns the X-Registry-Auth value for an image, as
// --with-registry-auth sends it, or "" when no credential matches.
func (in *Inputs) encodedAuthFor(image string) string {
	if len(in.RegistryAuth) == 0 {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return ""
	}
	a, ok := in.RegistryAuth[reference.Domain(named)]
	if !ok {
		return ""
	}
	enc, err := registry.EncodeAuthConfig(a)
	if err != nil {
		return ""
	}
	return enc
}
