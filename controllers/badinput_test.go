package controllers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// hostileFile reads a file of the compose library's hostile corpus.
func hostileFile(t *testing.T, name string) []byte {
	t.Helper()
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "internal", "compose", "testdata", "hostile", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// stackObjects lists what exists on the swarm under the stack's name.
func stackObjects(t *testing.T, stack string) []string {
	t.Helper()
	ctx := context.Background()
	cli := dockerClient(t)
	f := filters.NewArgs(filters.Arg("label", swarmv1.LabelStackNamespace+"="+stack))
	var out []string
	svcs, err := cli.ServiceList(ctx, swarmtypes.ServiceListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		out = append(out, "service "+s.Spec.Name)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		out = append(out, "network "+n.Name)
	}
	secrets, err := cli.SecretList(ctx, swarmtypes.SecretListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		out = append(out, "secret "+s.Spec.Name)
	}
	return out
}

// TestBadInputStacksAreRefused: hostile compose files, created all at once, are each
// refused with ComposeInvalid naming the file, nothing reaches the swarm, and the
// operator goes on serving a well-formed stack meanwhile.
func TestBadInputStacksAreRefused(t *testing.T) {
	ns, _ := newNamespace(t, "badinput")
	good := inlineStack(ns, "good", "good", "services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: 1, update_config: {monitor: 1s}}\n")
	create(t, good)
	t.Cleanup(func() { deleteStack(t, good) })
	waitReady(t, good, time.Minute)

	var huge strings.Builder
	huge.WriteString("services:\n  a:\n    image: numbers-api:v1\n    environment:\n")
	for i := 0; huge.Len() <= compose.MaxFileSize; i++ {
		fmt.Fprintf(&huge, "      VAR_%07d: %s\n", i, strings.Repeat("x", 64))
	}
	cases := []struct {
		name    string // also the stack's name and, with .yml, its file's
		content []byte
		binary  bool // from a ConfigMap's binaryData instead of inline
		frags   []string
	}{
		{"huge", []byte(huge.String()), false, []string{"at most 1048576"}},
		{"laughs", hostileFile(t, "billion-laughs.yml"), false, []string{"YAML aliases"}},
		{"blowup", hostileFile(t, "quadratic-blowup.yml"), false, []string{"aliases of &big"}},
		{"replicas", hostileFile(t, "replicas-two-to-the-63.yml"), false, []string{"replicas must be a whole number"}},
		{"ports", hostileFile(t, "port-target-99999-long-syntax.yml"), false, []string{"target port 99999"}},
		{"longmsg", []byte("services:\n  a:\n    image: numbers-api:v1\n    environment: [\"A=${X" + strings.Repeat("B", 600<<10) + "\"]\n"), false, []string{"invalid interpolation format"}},
		{"binary", hostileFile(t, "binary.elf"), true, []string{"neither UTF-8 nor UTF-16"}},
	}
	var stacks []*swarmv1.SwarmStack
	for _, tc := range cases {
		s := inlineStack(ns, tc.name, tc.name, string(tc.content))
		s.Spec.Compose.Files[0].Name = tc.name + ".yml"
		if tc.binary {
			create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name}, BinaryData: map[string][]byte{"compose": tc.content}})
			s.Spec.Compose.Files[0].Inline = nil
			s.Spec.Compose.Files[0].ConfigMapRef = &swarmv1.KeySelector{Name: tc.name, Key: "compose"}
		}
		create(t, s)
		t.Cleanup(func() { deleteStack(t, s) })
		stacks = append(stacks, s)
	}
	// Meanwhile a change to the good stack goes through.
	setCompose(t, good, "services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: 2, update_config: {monitor: 1s}}\n")

	for i, tc := range cases {
		s := stacks[i]
		c := waitReason(t, s, swarmv1.ReasonComposeInvalid, 30*time.Second)
		file := tc.name + ".yml"
		if !strings.HasPrefix(c.Message, file) {
			t.Errorf("%s: the message does not name %s first: %.300s", tc.name, file, c.Message)
		}
		for _, f := range tc.frags {
			if !strings.Contains(c.Message, f) {
				t.Errorf("%s: the message does not say %q: %.300s", tc.name, f, c.Message)
			}
		}
		if len(c.Message) > 2048 {
			t.Errorf("%s: a %d-byte message", tc.name, len(c.Message))
		}
		if st := condition(s.Status.Conditions, swarmv1.ConditionStalled); st == nil || st.Status != metav1.ConditionTrue {
			t.Errorf("%s: not Stalled: %s", tc.name, describeConditions(s.Status.Conditions))
		}
		if s.Status.ObservedGeneration != s.Generation {
			t.Errorf("%s: observedGeneration %d, generation %d", tc.name, s.Status.ObservedGeneration, s.Generation)
		}
		if left := stackObjects(t, tc.name); len(left) > 0 {
			t.Errorf("%s reached the swarm: %v", tc.name, left)
		}
		if n := eventCount(t, ns, swarmv1.ReasonComposeInvalid, file); n == 0 {
			t.Errorf("%s: no ComposeInvalid event naming %s", tc.name, file)
		}
	}
	waitReady(t, good, time.Minute)
	if svc, ok := inspectService(t, "good_a"); !ok || replicas(svc) != 2 {
		t.Errorf("the good stack's change was not applied: %d replicas", replicas(svc))
	}
	// And a new stack deploys as usual.
	late := inlineStack(ns, "late", "late", "services:\n  a:\n    image: numbers-api:v2\n    deploy: {replicas: 1}\n")
	create(t, late)
	t.Cleanup(func() { deleteStack(t, late) })
	waitReady(t, late, time.Minute)
}

// syncBuffer is a log sink that tests read while the operator writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func planted(what string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "planted-" + what + "-" + hex.EncodeToString(b)
}

// startOperatorLoggingAll replaces the suite's operator, until the test ends, with one
// whose logs at every verbosity go to the returned buffer, for tests that search them;
// stopping it (as cleanup does) completes the logs.
func startOperatorLoggingAll(t *testing.T) (*syncBuffer, *testbed.Operator) {
	t.Helper()
	stopOperator()
	t.Cleanup(startOperator)
	logs := &syncBuffer{}
	op, err := bed.StartOperatorWith(operatorOptions(), testbed.OperatorOptions{
		Logger: zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-10))),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Stop)
	return logs, op
}

// TestBadInputSecretValuesNeverLeak runs an operator whose logs, at every verbosity,
// go to a buffer, through the life of a stack that uses a secret (rotated once),
// registry credentials and secret variables, on a cluster whose TLS key is secret too,
// and beside a cluster whose TLS key is broken. No secret value may appear in a log
// line, an event or a status.
func TestBadInputSecretValuesNeverLeak(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "secrets-leak")
	logs, op := startOperatorLoggingAll(t)

	secretValue, registryPassword, variable, brokenKey := planted("stack-secret"), planted("registry-password"), planted("variable"), planted("broken-key")
	rotated := secretValue + "-rotated"
	dockerConfig, err := json.Marshal(map[string]any{"auths": map[string]any{"https://index.docker.io/v1/": map[string]string{
		"username": "robot", "password": registryPassword, "auth": base64.StdEncoding.EncodeToString([]byte("robot:" + registryPassword)),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Data: map[string][]byte{"password": []byte(secretValue)}}
	create(t, sec,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vars"}, Data: map[string][]byte{"API_TOKEN": []byte(variable)}},
		// A second cluster whose key is not a key: the TLS error must not quote it.
		tlsSecret(ns, "broken-tls", bed.Swarm.CACertPEM, bed.Swarm.ClientCertPEM,
			[]byte("-----BEGIN EC PRIVATE KEY-----\n"+base64.StdEncoding.EncodeToString([]byte(brokenKey))+"\n-----END EC PRIVATE KEY-----\n")),
		&swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}, Spec: swarmv1.SwarmClusterSpec{
			Endpoints: cluster.Spec.Endpoints, TLSSecretRef: &swarmv1.LocalObjectReference{Name: "broken-tls"}}},
	)
	yml := `services:
  api:
    image: numbers-api:v1
    environment: ["TOKEN=${API_TOKEN}"]
    secrets: [db_password]
    deploy: {replicas: 1, update_config: {monitor: 1s}}
secrets:
  db_password: {file: ./db_password.txt}
`
	s := inlineStack(ns, "leak", "leak", yml)
	s.Spec.Secrets = []swarmv1.StackSecret{{Name: "db_password", SecretRef: swarmv1.KeySelector{Name: "db", Key: "password"}}}
	s.Spec.RegistryAuth = &swarmv1.RegistryAuth{SecretRef: swarmv1.LocalObjectReference{Name: "regcred"}}
	s.Spec.Compose.VariablesFrom = []swarmv1.VariablesSource{{SecretRef: &swarmv1.LocalObjectReference{Name: "vars"}}}
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	waitReady(t, s, time.Minute)
	first := secretNamesOf(t, "leak_api")
	update(t, sec, func(sec *corev1.Secret) { sec.Data["password"] = []byte(rotated) })
	eventually(t, time.Minute, "the rotated secret in use", func() string {
		if now := secretNamesOf(t, "leak_api"); len(now) != 1 || now[0] == first[0] {
			return fmt.Sprintf("service secrets %v", now)
		}
		return ""
	})
	waitReady(t, s, time.Minute)
	broken := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}}
	eventually(t, 30*time.Second, "the broken cluster refused", func() string {
		get(t, broken)
		if c := condition(broken.Status.Conditions, swarmv1.ConditionReady); c == nil || c.Reason != swarmv1.ReasonTLSError {
			return describeConditions(broken.Status.Conditions)
		}
		return ""
	})
	// The stack's status before it goes; the end of its life is logged too. Then the
	// operator stops, and its logs are complete.
	var stacks swarmv1.SwarmStackList
	if err := bed.Client.List(ctx, &stacks, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	deleteStack(t, s)
	op.Stop()

	values := map[string]string{
		"the stack secret":             secretValue,
		"the rotated stack secret":     rotated,
		"the registry password":        registryPassword,
		"the registry auth (base64)":   base64.StdEncoding.EncodeToString([]byte("robot:" + registryPassword)),
		"the secret variable":          variable,
		"the broken TLS key":           brokenKey,
		"the broken TLS key (base64)":  base64.StdEncoding.EncodeToString([]byte(brokenKey)),
		"the TLS key (whole PEM body)": pemBody(bed.Swarm.ClientKeyPEM),
	}
	for i, line := range strings.Split(pemBody(bed.Swarm.ClientKeyPEM), "\n") {
		if len(line) >= 16 {
			values[fmt.Sprintf("the TLS key (PEM line %d)", i+1)] = line
		}
	}
	// What the operator said, where users and log collectors see it.
	var evs corev1.EventList
	if err := bed.Client.List(ctx, &evs, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var clusters swarmv1.SwarmClusterList
	if err := bed.Client.List(ctx, &clusters, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	statuses, err := json.Marshal([]any{stacks.Items, clusters.Items})
	if err != nil {
		t.Fatal(err)
	}
	eventText, err := json.Marshal(evs.Items)
	if err != nil {
		t.Fatal(err)
	}
	logText := logs.String()
	for _, want := range []string{"Applying stack", "RolloutCompleted", "StackRemoved"} {
		if !strings.Contains(logText, want) {
			t.Errorf("the logs never mention %q: the capture does not see what the operator does", want)
		}
	}
	if len(stacks.Items) != 1 || len(evs.Items) < 4 {
		t.Errorf("%d stacks and %d events to check", len(stacks.Items), len(evs.Items))
	}
	for what, v := range values {
		for where, text := range map[string]string{"logs": logText, "events": string(eventText), "status": string(statuses)} {
			if i := strings.Index(text, v); i >= 0 {
				t.Errorf("%s appears in the %s: ...%s...", what, where, text[max(0, i-200):min(len(text), i+len(v)+50)])
			}
		}
	}
	t.Logf("checked %d KiB of logs, %d events and the status of %d stacks and %d clusters", len(logText)>>10, len(evs.Items), len(stacks.Items), len(clusters.Items))
}

// pemBody is the base64 body of a PEM block, without its BEGIN and END lines.
func pemBody(p []byte) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestBadInputServiceNamesAsSwarmJudgesThem: the compose library refuses the service
// names Swarm refuses, and accepts the longest one it accepts.
func TestBadInputServiceNamesAsSwarmJudgesThem(t *testing.T) {
	if bed == nil {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	cli := dockerClient(t)
	zero := uint64(0)
	for name, valid := range map[string]bool{
		"bi_" + strings.Repeat("a", 60): true,  // 63 characters
		"bi_" + strings.Repeat("a", 61): false, // 64
		"bi_web.frontend":               false,
		"bi_web-front_end2":             true,
	} {
		_, renderErr := compose.Render([]compose.File{{Name: "names.yml", Content: []byte("services:\n  " + strings.TrimPrefix(name, "bi_") + ":\n    image: numbers-api:v1\n")}},
			compose.Options{StackName: "bi"})
		resp, swarmErr := cli.ServiceCreate(ctx, swarmtypes.ServiceSpec{
			Annotations:  swarmtypes.Annotations{Name: name},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v1"}},
			Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &zero}},
		}, swarmtypes.ServiceCreateOptions{})
		if swarmErr == nil {
			_ = cli.ServiceRemove(ctx, resp.ID)
		}
		if (swarmErr == nil) != valid || (renderErr == nil) != valid {
			t.Errorf("%q (%d characters): want valid=%v; Swarm says %v, the library says %v", name, len(name), valid, swarmErr, renderErr)
		}
	}
}
