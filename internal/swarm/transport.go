package swarm

import (
	"net/http"
	"strconv"

	"github.com/swarmops/swarm-operator/internal/metrics"
)

// countingTransport counts every Docker API request by endpoint, method and status code.
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
	metrics.DockerRequests.WithLabelValues(t.endpoint, req.Method, code).Inc()
	return resp, err
}
