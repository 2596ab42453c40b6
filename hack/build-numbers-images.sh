#!/usr/bin/env bash
# Builds the "numbers" test images (numbers-api:v1..v5, numbers-web:v1..v5) with the host
# Docker engine and saves all ten into ONE `docker save` tarball, which the Swarm sandbox
# (internal/sandbox) loads into every node. Prints the tarball's path on stdout.
#
# No registry is needed: the images are FROM scratch around one static Go binary built
# from test/numbers. The tarball is cached outside the repository and rebuilt only when
# the sources in test/numbers (or this script, or the Go version) change; while it is
# current, the host engine is not even needed.
#
#   NUMBERS_IMAGES_TAR=/path/x.tar   write/read the tarball there instead of the cache
#   FORCE=1                          rebuild even when the cache is current
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${repo}/test/numbers"
cache_dir="${XDG_CACHE_HOME:-${HOME}/.cache}/swarm-operator"
tar_path="${NUMBERS_IMAGES_TAR:-${cache_dir}/numbers-images.tar}"
stamp="${tar_path}.sha256"
versions=(v1 v2 v3 v4 v5)

hash="$(
  {
    (cd "${src}" && find . -type f \( -name '*.go' -o -name 'Dockerfile' -o -name 'go.mod' \) | LC_ALL=C sort | xargs sha256sum)
    sha256sum < "${BASH_SOURCE[0]}"
    go version
  } | sha256sum | cut -d' ' -f1
)"

current() { [[ "${FORCE:-}" != 1 && -s "${tar_path}" && -f "${stamp}" && "$(cat "${stamp}")" == "${hash}" ]]; }
if current; then
  echo "${tar_path}"
  exit 0
fi
# Test binaries run in parallel may all get here: one builds, the others wait for it.
mkdir -p "$(dirname "${tar_path}")"
exec 9>"${tar_path}.lock"
flock 9
if current; then
  echo "${tar_path}"
  exit 0
fi

docker info >/dev/null 2>&1 || {
  echo "the host Docker engine is not reachable (docker info failed); run hack/install-prereqs.sh as root" >&2
  exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
echo "Building the numbers binary" >&2
(cd "${repo}" && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o "${work}/numbers" ./test/numbers)
cp "${src}/Dockerfile" "${work}/Dockerfile"

images=()
for v in "${versions[@]}"; do
  for role in api web; do
    img="numbers-${role}:${v}"
    echo "Building ${img}" >&2
    # The legacy builder (DOCKER_BUILDKIT=0) ships with every engine (no buildx plugin
    # needed) and pulls nothing for FROM scratch. Its output, including a deprecation
    # notice of newer CLIs, is shown only when the build fails.
    if ! DOCKER_BUILDKIT=0 docker build -q --target "${role}" --build-arg "VERSION=${v}" \
      --label "swarm-operator.numbers.sources=${hash}" -t "${img}" "${work}" >"${work}/build.log" 2>&1; then
      cat "${work}/build.log" >&2
      exit 1
    fi
    images+=("${img}")
  done
done

echo "Saving ${#images[@]} images to ${tar_path}" >&2
docker save -o "${tar_path}.tmp" "${images[@]}"
chmod 0644 "${tar_path}.tmp"
mv -f "${tar_path}.tmp" "${tar_path}"
echo "${hash}" > "${stamp}"
echo "${tar_path}"
