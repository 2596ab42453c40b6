#!/usr/bin/env bash
# A local multi-node Docker Swarm for people (demos, manual tests), as root:
#
#   hack/sandbox.sh up [-managers 3] [-workers 2] [-name node] [-images auto|none|PATH]
#   eval "$(hack/sandbox.sh env)"     # point the docker CLI at node1 (mutual TLS)
#   docker node ls
#   hack/sandbox.sh status            # sandboxes in use (by whom), stale leftovers
#   hack/sandbox.sh down              # remove it (and leftovers of interrupted runs)
#   hack/sandbox.sh clean             # remove only leftovers of interrupted runs
#
# Each node is a dockerd in its own network namespace on a private bridge
# (192.168.213.0/24 for the first sandbox); see internal/sandbox. `up` loads the
# numbers test images (built by hack/build-numbers-images.sh) into every node and
# leaves the daemons running in the background. Prerequisites: hack/install-prereqs.sh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 1 ]]; then
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "hack/sandbox.sh must run as root (network namespaces, dockerd)" >&2
  exit 1
fi
cd "${repo}"
# Build the tiny CLI once per change instead of `go run` compiling into a temp dir
# each time (same thing, but reuses the binary).
bin="${XDG_CACHE_HOME:-${HOME}/.cache}/swarm-operator/bin/sandbox"
mkdir -p "$(dirname "${bin}")"
go build -o "${bin}" ./internal/sandbox/cmd/sandbox
exec "${bin}" "$@"
