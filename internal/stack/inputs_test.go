package stack

// gatherInputs and the registry credentials against a fake API server: every kind of
// source, the layering of variables, what counts as sensitive, and what is missing.

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/registry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

func TestEncodedAuthForPicksTheImagesRegistry(t *testing.T) {
	auths, err := parseDockerConfig([]byte(dockerConfig))
	if err != nil {
		t.Fatal(err)
	}
	in := &Inputs{RegistryAuth: auths}
	for _, tc := range []struct {
		image, user string
	}{
		{"nginx:1.27", "dockeruser"},
		{"library/redis", "dockeruser"},
		{"docker.io/org/app@sha256:" + strings.Repeat("a", 64), "dockeruser"},
		{"ghcr.io/octocat/app:v1", "octocat"},
		{"registry.example.com:5000/team/api", ""},
	} {
		enc := in.encodedAuthFor(tc.image)
		if enc == "" {
			t.Errorf("%s: no credential", tc.image)
			continue
		}
		a, err := registry.DecodeAuthConfig(enc)
		if err != nil {
			t.Fatalf("%s: %v", tc.image, err)
		}
		if a.Username != tc.user {
			t.Errorf("%s: username %q, want %q", tc.image, a.Username, tc.user)
		}
	}
	if a, _ := registry.DecodeAuthConfig(in.encodedAuthFor("registry.example.com:5000/team/api")); a.IdentityToken != "id-token-5678" {
		t.Errorf("identity token not sent: %+v", a)
	}
	for _, image := range []string{"other.io/app", "Invalid/UPPER", ""} {
		if enc := in.encodedAuthFor(image); enc != "" {
			t.Errorf("%q: credential %q, want none", image, enc)
		}
	}
	if enc := (&Inputs{}).encodedAuthFor("nginx"); enc != "" {
		t.Errorf("without credentials: %q", enc)
	}
}

func TestRegistryHostNormalisesURLsAndDockerHubAliases(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/":  "docker.io",
		"index.docker.io":              "docker.io",
		"registry-1.docker.io":         "docker.io",
		"docker.io":                    "docker.io",
		"http://localhost:5000/v2/":    "localhost:5000",
		"ghcr.io":                      "ghcr.io",
		"registry.example.com/path/to": "registry.example.com",
	} {
		if got := registryHost(in); got != want {
			t.Errorf("registryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDockerConfigKeepsNoRawAuth(t *testing.T) {
	raw := base64.StdEncoding.EncodeToString([]byte("u:p4ssword"))
	auths, err := parseDockerConfig([]byte(`{"auths": {"r.io": {"auth": "` + raw + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a := auths["r.io"]; a.Auth != "" || a.Username != "u" || a.Password != "p4ssword" {
		t.Errorf("auth = %+v", a)
	}
	if auths, err := parseDockerConfig([]byte(`{}`)); err != nil || len(auths) != 0 {
		t.Errorf("empty config: %v, %v", auths, err)
	}
}

const sourcesNS = "sources"

func sourcesCM(name string, data map[string]string, binary map[string][]byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: sourcesNS, Name: name}, Data: data, BinaryData: binary}
}

func sourcesSecret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sourcesNS, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func sourcesStack(mutate func(*swarmv1.SwarmStackSpec)) *swarmv1.SwarmStack {
	s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: sourcesNS, Name: "shop"}}
	mutate(&s.Spec)
	return s
}

// gets counts the reads of each object ("Kind/name").
type sourceReads map[string]int

func sourcesClient(t *testing.T, gets sourceReads, objs ...client.Object) client.Client {
	t.Helper()
	return fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if gets != nil {
				kind := "ConfigMap"
				if _, ok := obj.(*corev1.Secret); ok {
					kind = "Secret"
				}
				gets[kind+"/"+key.Name]++
			}
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
}

func gatherShop(t *testing.T, c client.Client, s *swarmv1.SwarmStack) (*Inputs, error) {
	t.Helper()
	return GatherInputs(context.Background(), c, s, "shop")
}

func sourcesText(s string) *string { return &s }

func TestStackInputsReadInlineAndConfigMapFilesInOrder(t *testing.T) {
	c := sourcesClient(t, nil,
		sourcesCM("compose", map[string]string{"base.yml": "services: {a: {image: a}}"}, map[string][]byte{"bin.yml": []byte("services: {b: {image: b}}")}))
	s := sourcesStack(func(sp *swarmv1.SwarmStackSpec) {
		sp.Compose.Files = []swarmv1.ComposeFile{
			{Name: "base.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "compose", Key: "base.yml"}},
			{Name: "inline.yml", Inline: sourcesText("services: {c: {image: c}}")},
			{Name: "bin.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "compose", Key: "bin.yml"}},
		}
	})
	in, err := gatherShop(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range in.Files {
		got = append(got, f.Name+"="+string(f.Content))
	}
	want := []string{"base.yml=services: {a: {image: a}}", "inline.yml=services: {c: {image: c}}", "bin.yml=services: {b: {image: b}}"}
	if !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if in.Opts.StackName != "shop" || in.Opts.SecretData != nil || in.Opts.ConfigData != nil || in.RegistryAuth != nil || len(in.Sensitive) != 0 {
		t.Errorf("inputs carry more than files: %+v", in)
	}
}

func TestStackInputsVariablesLayerConfigMapsSecretsThenSpec(t *testing.T) {
	gets := sourceReads{}
	c := sourcesClient(t, gets,
		sourcesCM("vars", map[string]string{"TAG": "v1", "REPLICAS": "2", "REGION": "eu"}, nil),
		sourcesSecret("creds", map[string]string{"DB_PASSWORD": "hunter22", "TAG": "v2"}),
	)
	s := sourcesStack(func(sp *swarmv1.SwarmStackSpec) {
		sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", Inline: sourcesText("services: {}")}}
		sp.Compose.VariablesFrom = []swarmv1.VariablesSource{
			{ConfigMapRef: &swarmv1.LocalObjectReference{Name: "vars"}},
			{SecretRef: &swarmv1.LocalObjectReference{Name: "creds"}},
			// The same ConfigMap again is read once.
			{ConfigMapRef: &swarmv1.LocalObjectReference{Name: "vars"}},
		}
		sp.Compose.Variables = map[string]string{"REPLICAS": "5"}
	})
	in, err := gatherShop(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	// The last source wins; spec.compose.variables win over every source.
	want := map[string]string{"TAG": "v1", "REPLICAS": "5", "REGION": "eu", "DB_PASSWORD": "hunter22"}
	if len(in.Opts.Variables) != len(want) {
		t.Errorf("variables = %v, want %v", in.Opts.Variables, want)
	}
	for k, v := range want {
		if in.Opts.Variables[k] != v {
			t.Errorf("variable %s = %q, want %q", k, in.Opts.Variables[k], v)
		}
	}
	slices.Sort(in.Sensitive)
	if !slices.Equal(in.Sensitive, []string{"hunter22", "v2"}) {
		t.Errorf("sensitive = %q, want the Secret's values only", in.Sensitive)
	}
	if gets["ConfigMap/vars"] != 1 || gets["Secret/creds"] != 1 {
		t.Errorf("reads = %v, want each source read once", gets)
	}
}

func TestStackInputsCarrySecretAndConfigDataAndOnlySecretsAreSensitive(t *testing.T) {
	gets := sourceReads{}
	c := sourcesClient(t, gets,
		sourcesSecret("tls", map[string]string{"key.pem": "PRIVATE-KEY", "cert.pem": "CERT"}),
		sourcesCM("nginx", map[string]string{"nginx.conf": "server {}"}, map[string][]byte{"logo.png": {0x89, 'P', 'N', 'G'}}),
	)
	s := sourcesStack(func(sp *swarmv1.SwarmStackSpec) {
		sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", Inline: sourcesText("services: {}")}}
		sp.Secrets = []swarmv1.StackSecret{
			{Name: "site_key", SecretRef: swarmv1.KeySelector{Name: "tls", Key: "key.pem"}},
			{Name: "site_cert", SecretRef: swarmv1.KeySelector{Name: "tls", Key: "cert.pem"}},
		}
		sp.Configs = []swarmv1.StackConfig{
			{Name: "nginx_conf", ConfigMapRef: swarmv1.KeySelector{Name: "nginx", Key: "nginx.conf"}},
			{Name: "logo", ConfigMapRef: swarmv1.KeySelector{Name: "nginx", Key: "logo.png"}},
		}
	})
	in, err := gatherShop(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if string(in.Opts.SecretData["site_key"]) != "PRIVATE-KEY" || string(in.Opts.SecretData["site_cert"]) != "CERT" || len(in.Opts.SecretData) != 2 {
		t.Errorf("secret data = %q", in.Opts.SecretData)
	}
	if string(in.Opts.ConfigData["nginx_conf"]) != "server {}" || string(in.Opts.ConfigData["logo"]) != "\x89PNG" || len(in.Opts.ConfigData) != 2 {
		t.Errorf("config data = %q", in.Opts.ConfigData)
	}
	if !slices.Equal(in.Sensitive, []string{"PRIVATE-KEY", "CERT"}) {
		t.Errorf("sensitive = %q, want the secrets' values and no config", in.Sensitive)
	}
	if gets["Secret/tls"] != 1 || gets["ConfigMap/nginx"] != 1 {
		t.Errorf("reads = %v, want each source read once", gets)
	}
}

func TestStackInputsMissingSourcesAreErrSourceMissing(t *testing.T) {
	inline := []swarmv1.ComposeFile{{Name: "c.yml", Inline: sourcesText("services: {}")}}
	for _, tc := range []struct {
		name   string
		spec   func(*swarmv1.SwarmStackSpec)
		inText string
	}{
		{"compose ConfigMap", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "nope", Key: "c.yml"}}}
		}, `ConfigMap "nope"`},
		{"compose key", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "present", Key: "other.yml"}}}
		}, `ConfigMap "present" has no key "other.yml"`},
		{"variables ConfigMap", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = inline
			sp.Compose.VariablesFrom = []swarmv1.VariablesSource{{ConfigMapRef: &swarmv1.LocalObjectReference{Name: "nope"}}}
		}, `ConfigMap "nope"`},
		{"variables Secret", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = inline
			sp.Compose.VariablesFrom = []swarmv1.VariablesSource{{SecretRef: &swarmv1.LocalObjectReference{Name: "nope"}}}
		}, `Secret "nope"`},
		{"secret Secret", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = inline
			sp.Secrets = []swarmv1.StackSecret{{Name: "s", SecretRef: swarmv1.KeySelector{Name: "nope", Key: "k"}}}
		}, `Secret "nope"`},
		{"secret key", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = inline
			sp.Secrets = []swarmv1.StackSecret{{Name: "s", SecretRef: swarmv1.KeySelector{Name: "present", Key: "absent"}}}
		}, `Secret "present" has no key "absent"`},
		{"config ConfigMap", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = inline
			sp.Configs = []swarmv1.StackConfig{{Name: "c", ConfigMapRef: swarmv1.KeySelector{Name: "nope", Key: "k"}}}
		}, `ConfigMap "nope"`},
		{"config key", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = inline
			sp.Configs = []swarmv1.StackConfig{{Name: "c", ConfigMapRef: swarmv1.KeySelector{Name: "present", Key: "absent"}}}
		}, `ConfigMap "present" has no key "absent"`},
		{"registryAuth Secret", func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = inline
			sp.RegistryAuth = &swarmv1.RegistryAuth{SecretRef: swarmv1.LocalObjectReference{Name: "nope"}}
		}, `Secret "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sourcesClient(t, nil,
				sourcesCM("present", map[string]string{"c.yml": "services: {}"}, nil),
				sourcesSecret("present", map[string]string{"k": "value"}))
			in, err := gatherShop(t, c, sourcesStack(tc.spec))
			if !errors.Is(err, ErrSourceMissing) {
				t.Fatalf("err = %v, want errSourceMissing", err)
			}
			if in != nil {
				t.Errorf("inputs returned with an error: %+v", in)
			}
			if !strings.Contains(err.Error(), tc.inText) {
				t.Errorf("err = %q, want it to name %s", err, tc.inText)
			}
		})
	}
}

func TestStackInputsWithoutASourceKindAreSpecErrors(t *testing.T) {
	c := sourcesClient(t, nil)
	_, err := gatherShop(t, c, sourcesStack(func(sp *swarmv1.SwarmStackSpec) {
		sp.Compose.Files = []swarmv1.ComposeFile{{Name: "a.yml", Inline: sourcesText("services: {}")}, {Name: "empty.yml"}}
	}))
	if err == nil || errors.Is(err, ErrSourceMissing) || !strings.Contains(err.Error(), "spec.compose.files[1] (empty.yml)") {
		t.Errorf("file without source: err = %v", err)
	}
	_, err = gatherShop(t, c, sourcesStack(func(sp *swarmv1.SwarmStackSpec) {
		sp.Compose.Files = []swarmv1.ComposeFile{{Name: "a.yml", Inline: sourcesText("services: {}")}}
		sp.Compose.VariablesFrom = []swarmv1.VariablesSource{{}}
	}))
	if err == nil || errors.Is(err, ErrSourceMissing) || !strings.Contains(err.Error(), "spec.compose.variablesFrom[0]") {
		t.Errorf("variablesFrom without source: err = %v", err)
	}
}

func TestStackInputsPassOnAPIErrorsOtherThanNotFound(t *testing.T) {
	boom := errors.New("apiserver timeout")
	c := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return boom
		}}).Build()
	for name, spec := range map[string]func(*swarmv1.SwarmStackSpec){
		"ConfigMap": func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "cm", Key: "c.yml"}}}
		},
		"Secret": func(sp *swarmv1.SwarmStackSpec) {
			sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", Inline: sourcesText("services: {}")}}
			sp.Compose.VariablesFrom = []swarmv1.VariablesSource{{SecretRef: &swarmv1.LocalObjectReference{Name: "s"}}}
		},
	} {
		_, err := gatherShop(t, c, sourcesStack(spec))
		if !errors.Is(err, boom) || errors.Is(err, ErrSourceMissing) {
			t.Errorf("%s: err = %v, want the API error, not a missing source", name, err)
		}
	}
}

const dockerConfig = `{"auths": {
	"https://index.docker.io/v1/": {"auth": "` + "ZG9ja2VydXNlcjpwYTpzcw==" + `"},
	"ghcr.io": {"username": "octocat", "password": "ghp_token1234"},
	"registry.example.com:5000": {"identitytoken": "id-token-5678"},
	"http://quay.io/v2/": {"auth": "bm9jb2xvbg=="},
	"broken.io": {"auth": "%%%not-base64"}
}}`

func TestStackInputsRegistryAuthParsesDockerConfigAndMarksCredentialsSensitive(t *testing.T) {
	sec := sourcesSecret("pull", map[string]string{corev1.DockerConfigJsonKey: dockerConfig})
	sec.Type = corev1.SecretTypeDockerConfigJson
	c := sourcesClient(t, nil, sec)
	in, err := gatherShop(t, c, sourcesStack(func(sp *swarmv1.SwarmStackSpec) {
		sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", Inline: sourcesText("services: {}")}}
		sp.RegistryAuth = &swarmv1.RegistryAuth{SecretRef: swarmv1.LocalObjectReference{Name: "pull"}}
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]registry.AuthConfig{
		// "auth" is user:password, split at the first colon.
		"docker.io":                 {Username: "dockeruser", Password: "pa:ss", ServerAddress: "https://index.docker.io/v1/"},
		"ghcr.io":                   {Username: "octocat", Password: "ghp_token1234", ServerAddress: "ghcr.io"},
		"registry.example.com:5000": {IdentityToken: "id-token-5678", ServerAddress: "registry.example.com:5000"},
		// No colon in the decoded auth, or no base64 at all: no username is made up.
		"quay.io":   {ServerAddress: "http://quay.io/v2/"},
		"broken.io": {ServerAddress: "broken.io"},
	}
	if len(in.RegistryAuth) != len(want) {
		t.Errorf("registries = %v, want %v", in.RegistryAuth, want)
	}
	for host, w := range want {
		if got := in.RegistryAuth[host]; got != w {
			t.Errorf("%s: %+v, want %+v", host, got, w)
		}
	}
	for _, v := range []string{"pa:ss", "ghp_token1234", "id-token-5678"} {
		if !slices.Contains(in.Sensitive, v) {
			t.Errorf("sensitive %q lacks %q", in.Sensitive, v)
		}
	}
}

func TestStackInputsBrokenRegistryAuthNeverQuotesTheSecret(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"missing key", "", `key ".dockerconfigjson" is missing or empty`},
		{"not JSON", `{"auths": {"ghcr.io": {"password": "s3cr3t-value"`, "not valid docker config JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string]string{}
			if tc.data != "" {
				data[corev1.DockerConfigJsonKey] = tc.data
			}
			c := sourcesClient(t, nil, sourcesSecret("pull", data))
			_, err := gatherShop(t, c, sourcesStack(func(sp *swarmv1.SwarmStackSpec) {
				sp.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", Inline: sourcesText("services: {}")}}
				sp.RegistryAuth = &swarmv1.RegistryAuth{SecretRef: swarmv1.LocalObjectReference{Name: "pull"}}
			}))
			if err == nil || errors.Is(err, ErrSourceMissing) {
				t.Fatalf("err = %v, want a registryAuth error", err)
			}
			if !strings.Contains(err.Error(), `registryAuth Secret "pull"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("err quotes the Secret: %q", err)
			}
		})
	}
}
