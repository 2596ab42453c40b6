package main

import (
	"strings"
	"testing"

	"github.com/swarmops/swarm-operator/internal/security"
)

func TestStackSecurityFlags(t *testing.T) {
	p, err := stackSecurityPolicy("baseline", "/srv/a, /srv/b", "80,443")
	if err != nil || p.Level != security.Baseline || len(p.AllowedHostPaths) != 2 || len(p.AllowedHostPorts) != 2 || p.AllowedHostPorts[1] != 443 {
		t.Fatalf("got %+v, %v", p, err)
	}
	for args, want := range map[[3]string]string{
		{"strict", "", ""}:          "--stack-security-default: unknown security level \"strict\"",
		{"baseline", "srv", ""}:     "--stack-security-allowed-host-paths: host path \"srv\" is not absolute",
		{"baseline", "", "80,http"}: "--stack-security-allowed-host-ports: port \"http\"",
		{"baseline", "", "0"}:       "--stack-security-allowed-host-ports: port \"0\"",
	} {
		if _, err := stackSecurityPolicy(args[0], args[1], args[2]); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", args, err, want)
		}
	}
}
