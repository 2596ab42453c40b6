#!/usr/bin/env bash
# Prints a directory holding a Flux source-controller binary and its CRDs (crds/), for
# the integration test of stacks deployed from Git.
#
# Built from the Go module proxy like the envtest binaries (hack/envtest-assets.sh):
# about 3 minutes on 2 cores, once; cached outside the repository, keyed by version. A
# user who already has them sets SOURCE_CONTROLLER_ASSETS and nothing is built.
set -euo pipefail

VERSION="${SOURCE_CONTROLLER_VERSION:-1.9.6}"

if [[ -n "${SOURCE_CONTROLLER_ASSETS:-}" ]]; then
  [[ -x "${SOURCE_CONTROLLER_ASSETS}/source-controller" && -d "${SOURCE_CONTROLLER_ASSETS}/crds" ]] ||
    { echo "SOURCE_CONTROLLER_ASSETS=${SOURCE_CONTROLLER_ASSETS} has no source-controller or crds/" >&2; exit 1; }
  echo "${SOURCE_CONTROLLER_ASSETS}"
  exit 0
fi

cache_root="${XDG_CACHE_HOME:-${HOME}/.cache}/swarm-operator/flux"
dest="${cache_root}/source-controller-${VERSION}"
if [[ -x "${dest}/source-controller" && -d "${dest}/crds" ]]; then
  echo "${dest}"
  exit 0
fi

mkdir -p "${dest}"
# One build at a time; the others wait for it (as hack/envtest-assets.sh).
exec 9>"${dest}.lock"
flock 9
if [[ -x "${dest}/source-controller" && -d "${dest}/crds" ]]; then
  echo "${dest}"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
echo "Building Flux source-controller v${VERSION} (about 3 minutes on 2 cores, once)" >&2
(
  cd "${work}"
  go mod init build-source-controller >/dev/null 2>&1
  # Its go.mod names github.com/fluxcd/pkg/artifact v0.18.3, which the proxy does not
  # serve (v0.18.0 builds), and its own replace of go-digest must be repeated here: a
  # dependency's replaces do not apply to the module that builds it.
  go mod edit -require "github.com/fluxcd/source-controller@v${VERSION}" \
    -replace github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0 \
    -replace github.com/opencontainers/go-digest=github.com/opencontainers/go-digest@v1.0.1-0.20220411205349-bde1400a84be
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/fluxcd/source-controller"
GO
  go mod tidy -e >&2  # -e: test-only dependencies of dependencies are not all served
  CGO_ENABLED=0 go build -mod=mod -trimpath -o "${dest}/source-controller.tmp" github.com/fluxcd/source-controller >&2
  src="$(go list -m -f '{{.Dir}}' "github.com/fluxcd/source-controller")"
  rm -rf "${dest}/crds.tmp" && mkdir -p "${dest}/crds.tmp"
  cp "${src}"/config/crd/bases/*.yaml "${dest}/crds.tmp/"
  chmod u+w "${dest}"/crds.tmp/*.yaml
)
rm -rf "${dest}/crds" && mv "${dest}/crds.tmp" "${dest}/crds"
mv "${dest}/source-controller.tmp" "${dest}/source-controller"
echo "${dest}"
