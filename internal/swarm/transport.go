package swarm

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/swarmops/swarm-operator/internal/metrics"
)

// countingTransport counts every Docker API request by endpoint, method, kind of object
// and status code.
type countingTransport struct {
	endpoint string
	next     http.RoundTripper
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	metrics.DockerRequests.WithLabelValues(t.endpoint, req.Method, requestKind(req.URL.Path), code).Inc()
	return resp, err
}

// requestKind is the first segment of a Docker API path after its version: services,
// networks, tasks, events, _ping, ... A bounded set, so a label.
func requestKind(path string) string {
	path = strings.TrimPrefix(path, "/")
	if strings.HasPrefix(path, "v1.") {
		_, path, _ = strings.Cut(path, "/")
	}
	kind, _, _ := strings.Cut(path, "/")
	return kind
}
