#!/usr/bin/env bash
# Prints a directory holding kube-apiserver and etcd for envtest.
#
# The usual download site for these binaries is not reachable from every machine we
# support, so we build them from the Go module proxy instead. The result is cached
# outside the repository, keyed by version, and reused by later runs. A user who
# already has the binaries sets KUBEBUILDER_ASSETS and nothing is built.
set -euo pipefail

KUBE_VERSION="${ENVTEST_KUBE_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-3.6.16}"

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for bin in kube-apiserver etcd; do
    [[ -x "${KUBEBUILDER_ASSETS}/${bin}" ]] || { echo "KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS} has no ${bin}" >&2; exit 1; }
  done
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi

cache_root="${XDG_CACHE_HOME:-${HOME}/.cache}/swarm-operator/envtest"
dest="${cache_root}/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"
if [[ -x "${dest}/kube-apiserver" && -x "${dest}/etcd" ]]; then
  echo "${dest}"
  exit 0
fi

mkdir -p "${dest}"
# Several runs may start at once (make test and a demo, test binaries in parallel): one
# builds, the others wait for it instead of compiling kube-apiserver side by side.
exec 9>"${dest}.lock"
flock 9
if [[ -x "${dest}/kube-apiserver" && -x "${dest}/etcd" ]]; then
  echo "${dest}"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
minor="${KUBE_VERSION#*.}"; minor="${minor%%.*}"
staging_version="v0.${KUBE_VERSION#*.}"

if [[ ! -x "${dest}/etcd" ]]; then
  echo "Building etcd v${ETCD_VERSION} (about a minute)" >&2
  mkdir -p "${work}/etcd"
  (
    cd "${work}/etcd"
    go mod init envtest-etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
    CGO_ENABLED=0 go build -trimpath -o "${dest}/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "${dest}/etcd.tmp" "${dest}/etcd"
fi

if [[ ! -x "${dest}/kube-apiserver" ]]; then
  echo "Building kube-apiserver v${KUBE_VERSION} (about 10 minutes on 2 cores, once)" >&2
  mkdir -p "${work}/kube"
  (
    cd "${work}/kube"
    go mod init envtest-kube >/dev/null 2>&1
    # k8s.io/kubernetes pins its staging modules at v0.0.0 and replaces them with local
    # paths; outside its tree each must be replaced with the published version.
    gomod="$(go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    go mod edit -require "k8s.io/kubernetes@v${KUBE_VERSION}"
    grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "${gomod}" | awk '{print $1}' | sort -u | while read -r mod; do
      go mod edit -replace "${mod}=${mod}@${staging_version}"
    done
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
    go mod tidy >&2 || true
    CGO_ENABLED=0 go build -trimpath -o "${dest}/kube-apiserver.tmp" \
      -ldflags "-X k8s.io/component-base/version.gitVersion=v${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}" \
      k8s.io/kubernetes/cmd/kube-apiserver >&2
  )
  mv "${dest}/kube-apiserver.tmp" "${dest}/kube-apiserver"
fi
echo "${dest}"
