// Command numbers is the demo application of the seed scenario (see
// docs/design/seed-scenario.md): a random-number API and a web front end that calls it.
// One static binary serves both roles so that the test images can be FROM scratch:
//
//	numbers api     serve GET /rng and GET /health on :80
//	numbers web     serve a page on :80 that calls the API at $RngApi__Url, and GET /health
//	numbers health  GET http://127.0.0.1:80/health, exit 0 when it answers 200, else 1
//	                (the image's exec-form HEALTHCHECK; a scratch image has no shell)
//
// The version comes from $NUMBERS_VERSION, set by the image. The v5 API is "broken":
// its /health answers 500 unless the environment sets Broken=false, which is the
// setting v5-bad.yml forgets. $NUMBERS_ADDR overrides the listen address (":80") for
// running the binary outside a container.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: numbers api|web|health")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "api":
		serve(apiHandler())
	case "web":
		serve(webHandler())
	case "health":
		os.Exit(health())
	case "version":
		fmt.Println(version())
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q; usage: numbers api|web|health\n", os.Args[1])
		os.Exit(2)
	}
}

func version() string {
	if v := os.Getenv("NUMBERS_VERSION"); v != "" {
		return v
	}
	return "dev"
}

func listenAddr() string {
	if a := os.Getenv("NUMBERS_ADDR"); a != "" {
		return a
	}
	return ":80"
}

// broken reports whether this instance must fail its health check: the v5 API needs
// Broken=false in its environment.
func broken() bool {
	return version() == "v5" && !strings.EqualFold(os.Getenv("Broken"), "false")
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rng", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"number":  rand.IntN(100),
			"version": version(),
			"host":    hostname(),
		})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if broken() {
			writeJSON(w, http.StatusInternalServerError, map[string]any{
				"status": "unhealthy", "version": version(),
				"reason": "v5 needs the setting Broken=false",
			})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": version()})
	})
	return mux
}

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><title>Random Number Generator</title></head>
<body>
<h1>Random Number Generator</h1>
<p>web {{.Version}} on {{.Host}}</p>
{{if .Err}}<p id="error">RNG service unavailable: {{.Err}}</p>{{else}}<p>Here's a random number: <span id="number">{{.Number}}</span> (api {{.APIVersion}} on {{.APIHost}})</p>{{end}}
<form method="get" action="/"><button type="submit">Go!</button></form>
</body></html>
`))

func apiURL() string {
	if u := os.Getenv("RngApi__Url"); u != "" {
		return u
	}
	return "http://numbers-api/rng"
}

type rngResult struct {
	Number  int    `json:"number"`
	Version string `json:"version"`
	Host    string `json:"host"`
}

func callAPI(ctx context.Context) (rngResult, error) {
	var res rngResult
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL(), nil)
	if err != nil {
		return res, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return res, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return res, json.NewDecoder(resp.Body).Decode(&res)
}

func webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		data := map[string]any{"Version": version(), "Host": hostname()}
		res, err := callAPI(r.Context())
		if err != nil {
			data["Err"] = err.Error()
			w.WriteHeader(http.StatusBadGateway)
		} else {
			data["Number"], data["APIVersion"], data["APIHost"] = res.Number, res.Version, res.Host
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, data)
	})
	// /rng proxies the API call and answers JSON, for tests and scripts.
	mux.HandleFunc("GET /rng", func(w http.ResponseWriter, r *http.Request) {
		res, err := callAPI(r.Context())
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "web": version()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"number": res.Number, "api": res.Version, "apiHost": res.Host, "web": version()})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": version()})
	})
	return mux
}

func serve(h http.Handler) {
	srv := &http.Server{Addr: listenAddr(), Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("numbers %s %s listening on %s", os.Args[1], version(), srv.Addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		stop()
		log.Fatal(err) //nolint:gocritic // stop already ran

	}
}

func health() int {
	port := "80"
	if a := listenAddr(); strings.Contains(a, ":") {
		port = a[strings.LastIndex(a, ":")+1:]
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, "health:", err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	fmt.Printf("%s %s\n", resp.Status, strings.TrimSpace(string(b)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
