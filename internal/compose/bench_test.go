package compose

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// bigCompose is a stack of n services of the usual shape.
func bigCompose(n int) []byte {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  svc-%d:
    image: registry.example.com/team/svc-%d:1.%d
    command: [serve, --port, "8080"]
    environment:
      - LOG_LEVEL=info
      - PEER=svc-%d
    ports: ["%d:8080"]
    networks: [back]
    volumes: [data-%d:/data]
    healthcheck:
      test: [CMD, /app, health]
      interval: 5s
    deploy:
      replicas: 2
      resources: {limits: {cpus: "0.5", memory: 128M}}
      update_config: {parallelism: 1, order: start-first, failure_action: rollback}
      placement: {constraints: [node.role == worker]}
`, i, i, i, (i+1)%n, 20000+i, i)
	}
	b.WriteString("networks:\n  back: {}\nvolumes:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  data-%d: {}\n", i)
	}
	return []byte(b.String())
}

func BenchmarkRender500(b *testing.B) {
	files := []File{{Name: "big.yml", Content: bigCompose(500)}}
	for b.Loop() {
		if _, err := Render(files, Options{StackName: "big"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkComposeGoLoad500 is compose-go's own load of the same file, the
// floor for BenchmarkRender500.
func BenchmarkComposeGoLoad500(b *testing.B) {
	content := bigCompose(500)
	for b.Loop() {
		_, err := captureLogs(func() error {
			_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
				WorkingDir:  "/",
				ConfigFiles: []types.ConfigFile{{Filename: "big.yml", Content: content}},
				Environment: types.Mapping{},
			}, func(o *loader.Options) { o.SetProjectName("big", true) })
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheHit(b *testing.B) {
	files := []File{{Name: "big.yml", Content: bigCompose(500)}}
	c := NewCache(4)
	if _, err := c.Render(files, Options{StackName: "big"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Render(files, Options{StackName: "big"}); err != nil {
			b.Fatal(err)
		}
	}
}
