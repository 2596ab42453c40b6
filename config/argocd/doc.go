// Package argocd holds the Argo CD resource customizations of the operator's kinds
// (health checks and actions, in Argo CD's resource_customizations layout under
// swarm.swarmops.io/<Kind>/) and the tests that run them with gopher-lua, the Lua
// interpreter Argo CD embeds, and that check kstatus reads the same fixtures alike.
package argocd
