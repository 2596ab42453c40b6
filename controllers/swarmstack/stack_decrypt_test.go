package swarmstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

// Secrets in Git, encrypted with SOPS: decrypted in memory with the keys of
// spec.decryption's Secret, and never seen anywhere but on the Swarm.

const decryptCompose = `
services:
  api:
    image: numbers-api:v1
    env_file: [./app.env]
    secrets: [db_password]
secrets:
  db_password:
    file: ./secrets/db_password.txt
`

// plantedSecret is the value the SOPS files hide; no channel may show it.
const plantedSecret = "pl4nted-sops-value-7d1e"

// encryptedFiles is the repository: the compose file in clear, the env_file and the
// secret's file encrypted for recipient.
func encryptedFiles(enc func(name, plain string) string) map[string]string {
	return map[string]string{
		"stacks/numbers/docker-compose.yml":      decryptCompose,
		"stacks/numbers/app.env":                 enc("app.env", "DB_PASSWORD="+plantedSecret+"\nLOG_LEVEL=debug\n"),
		"stacks/numbers/secrets/db_password.txt": enc("db_password.txt", plantedSecret),
		"stacks/numbers/release.yml":             "services: {api: {image: numbers-api:v1}}\n",
		"stacks/other/docker-compose.yml":        "services: {other: {image: other:v1}}\n",
	}
}

// logged runs passes with a logger that keeps every line, as the manager's would.
func (e *sourceEnv) loggedPasses(name string, n int, logs *bytes.Buffer) []error {
	var errs []error
	logger := funcr.New(func(prefix, args string) { fmt.Fprintln(logs, prefix, args) }, funcr.Options{Verbosity: 10})
	for range n {
		ctx := ctrl.LoggerInto(context.Background(), logger)
		_, err := e.reconciler().Reconcile(ctx, ctrl.Request{NamespacedName: ktypes.NamespacedName{Namespace: stackNS, Name: name}})
		errs = append(errs, err)
		e.clk.Advance(3e9)
	}
	return errs
}

func (e *sourceEnv) decryptingStack(keys map[string][]byte) {
	e.t.Helper()
	if err := e.c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "sops-keys"}, Data: keys}); err != nil {
		e.t.Fatal(err)
	}
	e.sourceStack("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Decryption = &swarmv1.Decryption{Provider: "sops", SecretRef: &swarmv1.LocalObjectReference{Name: "sops-keys"}}
		s.Spec.Compose.Files = s.Spec.Compose.Files[:1]
	})
}

// assertNowhere searches every channel the operator speaks on for the planted value:
// status, Kubernetes events and notifications (events), logs and returned errors.
func (e *sourceEnv) assertNowhere(logs *bytes.Buffer, errs []error, events []string) {
	e.t.Helper()
	if !strings.Contains(logs.String(), "numbers") {
		e.t.Fatalf("no log line of the stack was captured: %q", logs.String())
	}
	status, _ := json.Marshal(e.stack("numbers").Status)
	for channel, text := range map[string]string{
		"status": string(status), "events": strings.Join(events, "\n"), "logs": logs.String(), "errors": fmt.Sprint(errs),
	} {
		if strings.Contains(text, plantedSecret) {
			e.t.Fatalf("the decrypted value reached the %s: %s", channel, text)
		}
	}
}

func TestSopsEncryptedSecretAndEnvFileAreDecryptedAndNeverShown(t *testing.T) {
	identity, mk := testkit.AgeKey(t)
	e := newSourceEnv(t)
	files := encryptedFiles(func(name, plain string) string { return string(testkit.SopsEncrypt(t, name, []byte(plain), mk)) })
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", files, nil), metav1.ConditionTrue)
	e.decryptingStack(map[string][]byte{"prod.agekey": []byte(identity)})
	rcv := receiveNotifications(t, e)
	var logs bytes.Buffer
	errs := e.loggedPasses("numbers", 2, &logs)
	e.sw.ConvergeAll()
	errs = append(errs, e.loggedPasses("numbers", 3, &logs)...)
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)

	svc, _ := e.sw.Service("numbers_api")
	if env := strings.Join(svc.Spec.TaskTemplate.ContainerSpec.Env, ","); !strings.Contains(env, "DB_PASSWORD="+plantedSecret) {
		t.Fatalf("env_file not decrypted: %s", env)
	}
	secrets, _ := e.sw.Secrets(context.Background(), "")
	if len(secrets) != 1 {
		t.Fatalf("secrets %+v", secrets)
	}
	if data, ok := e.sw.SecretData(secrets[0].Name); !ok || string(data) != plantedSecret {
		t.Fatalf("the Swarm secret holds %q, want the decrypted value", data)
	}
	if len(rcv.bodies) != 2 {
		t.Fatalf("notifications %q, want the start and the completion", rcv.bodies)
	}
	e.assertNowhere(&logs, errs, append(e.events(), rcv.bodies...))
}

func TestSopsFileNoKeyOpensIsDecryptionFailedAndWritesNothing(t *testing.T) {
	identity, mk := testkit.AgeKey(t)
	otherIdentity, _ := testkit.AgeKey(t)
	e := newSourceEnv(t)
	files := encryptedFiles(func(name, plain string) string { return string(testkit.SopsEncrypt(t, name, []byte(plain), mk)) })
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", files, nil), metav1.ConditionTrue)
	e.decryptingStack(map[string][]byte{"wrong.agekey": []byte(otherIdentity)})
	var logs bytes.Buffer
	errs := e.loggedPasses("numbers", 3, &logs)
	r := e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDecryptionFailed)
	if !strings.Contains(r.Message, `no key of Secret "sops-keys" opens it`) || !strings.Contains(r.Message, "stacks/numbers/") {
		t.Fatalf("message %q: want it to name the file and the Secret", r.Message)
	}
	if w := e.sw.Writes(); len(w) != 0 {
		t.Fatalf("wrote to the swarm: %v", w)
	}
	e.assertNowhere(&logs, errs, e.events())

	// The right key added to the Secret: the stack rolls out.
	var sec corev1.Secret
	if err := e.c.Get(context.Background(), ktypes.NamespacedName{Namespace: stackNS, Name: "sops-keys"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["prod.agekey"] = []byte(identity)
	if err := e.c.Update(context.Background(), &sec); err != nil {
		t.Fatal(err)
	}
	e.passes("numbers", 1)
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("the key in place, nothing rolled out: image %q, Ready %+v", got, e.ready("numbers"))
	}
}
