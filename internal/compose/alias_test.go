package compose

import (
	"strings"
	"testing"
	"time"
)

// Found by FuzzRender: an anchor that contains an alias of itself made the loader recurse
// forever.
func TestRenderRefusesAnchorsThatContainThemselves(t *testing.T) {
	cases := map[string]string{
		"a sequence holding itself":          "x: &a [*a]\nservices: {s: {image: x}}\n",
		"a mapping merging itself":           "x: &a {<<: *a}\nservices: {s: {image: x}}\n",
		"the services mapping inside itself": "services: &a {s: {image: x, labels: *a}}\n",
		"a nested anchor pointing outwards":  "x: &a [&b [*a]]\nservices: {s: {image: x}}\n",
	}
	for name, yml := range cases {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Render([]File{{Name: "loop.yml", Content: []byte(yml)}}, Options{StackName: "s"})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "loop.yml") || !strings.Contains(err.Error(), "refers to its own anchor") {
					t.Fatalf("got %v, want an error naming loop.yml and the self-reference", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Render did not return")
			}
		})
	}
}
