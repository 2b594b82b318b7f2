#!/usr/bin/env bash
# Builds the Kubernetes conformance suite for one Kubernetes version from the Go module proxy, with
# the same module set-up as the bundle (scripts/build-bundle.sh): e2e.test (the upstream suite,
# `go test -c k8s.io/kubernetes/test/e2e`), ginkgo at the version k8s.io/kubernetes requires, and
# agnhost (test/images/agnhost, the suite's multi-purpose test server). With --slim, also
# e2e-slim.test: a smaller test binary (scripts/conformance-slim/) that links only the framework and
# the sig packages of the CI subset. Output: ~/.cache/kubeprov/conformance/<version>/.
# Idempotent: a binary already present is not rebuilt.
# Then the test images the suite runs, made locally under the names the suite asks for (see
# build_images below), so that nodes never pull.
# --ci builds what CI's conformance subset needs: everything but the full e2e.test, the slim one instead.
# Usage: scripts/build-conformance.sh [--slim] [--ci] [--no-images] [vX.Y.Z]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
source "$here/scripts/k8s-module.sh"
slim=0 full=1 images=1
args=()
for a in "$@"; do
  case "$a" in
    --slim) slim=1 ;;
    --ci) slim=1 full=0 ;;
    --no-images) images=0 ;;
    -*) echo "build-conformance: unknown option $a (expected --slim, --ci, --no-images, or a version vX.Y.Z)" >&2; exit 2 ;;
    *) args+=("$a") ;;
  esac
done
default_version=$(sed -n 's/^export const DEFAULT_KUBERNETES_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")
K8S_VERSION="${args[0]:-$default_version}"
if ! [[ "$K8S_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "build-conformance: version must look like v1.37.2, got '$K8S_VERSION'" >&2; exit 2
fi
CACHE="${KUBEPROV_CACHE:-$HOME/.cache/kubeprov}"
OUT="$CACHE/conformance/$K8S_VERSION"
MOD="$CACHE/gobuild/conformance-$K8S_VERSION"
export PATH="/usr/local/go/bin:$PATH"
export GOCACHE="$CACHE/go-build-cache" GOMODCACHE="${GOMODCACHE:-$CACHE/go-mod}" GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
mkdir -p "$OUT" "$MOD"
log() { printf '[conformance %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The wrapper module: requires k8s.io/kubernetes, maps every staging module it replaces with
# ./staging/... to the published v0.Y.Z, and names the three programs so `go mod tidy` records all
# their (test) dependencies. The slim suite's package lives inside it (copied from the repository).
cd "$MOD"
if [ ! -f go.sum ]; then
  log "resolving k8s.io/kubernetes $K8S_VERSION (test dependencies included)"
  k8s_wrapper_module kubeprov.local/conformance "$K8S_VERSION" github.com/onsi/ginkgo/v2/ginkgo k8s.io/kubernetes/test/e2e k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/images/nonewprivs k8s.io/sample-apiserver
fi

ldflags=$(k8s_ldflags "$K8S_VERSION")

# timed BINARY COMMAND...: runs a build into $OUT/BINARY.tmp, then moves it in place and logs the time.
timed() {
  local binary=$1 t0=$SECONDS
  shift
  log "building $binary"
  "$@"
  mv "$OUT/$binary.tmp" "$OUT/$binary"
  log "built $binary in $((SECONDS - t0))s"
  echo "$((SECONDS - t0))" > "$OUT/$binary.buildseconds"
}

# --- test images -------------------------------------------------------------------------
# The suite's image names and tags come from its own list (test/utils/image/manifest.go). Each
# stand-in is built from templates/conformance/Dockerfile.<recipe> on the bundle's Debian base with
# the programs built above; an image is rebuilt only when its inputs (Dockerfile, files) changed,
# recorded in the label io.kubeprov.conformance.input. Written to $OUT/images.txt, one name a line.
SRC="$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION"
DEBIAN_BASE=$(sed -n 's/^export const DEBIAN_BASE_IMAGE = "\(.*\)";/\1/p' "$here/provisioner/images/build.ts")
REGISTRY_IMAGE=$(sed -n 's/^export const REGISTRY_IMAGE = "\(.*\)";/\1/p' "$here/scripts/conformance.ts")
# image_ref ID: the registry/name:tag the suite uses for imageutils.ID (promoter registry only).
image_ref() {
  local line
  line=$(grep -E "configs\[$1\] = Config\{list\.PromoterE2eRegistry, " "$SRC/test/utils/image/manifest.go") ||
    { echo "build-conformance: no image $1 in $SRC/test/utils/image/manifest.go" >&2; exit 1; }
  echo "$line" | sed -E 's/.*"([^"]+)", "([^"]+)".*/registry.k8s.io\/e2e-test-images\/\1:\2/'
}
# build_recipe RECIPE BASE TAG... [-- FILE...]: builds templates/conformance/Dockerfile.RECIPE with
# the files after -- in its context, tagged with every TAG.
build_recipe() {
  local recipe=$1 base=$2
  shift 2
  local tags=() files=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do tags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  files=("$@")
  local ctx
  ctx=$(mktemp -d)
  cp "$here/templates/conformance/Dockerfile.$recipe" "$ctx/Dockerfile"
  for f in "${files[@]}"; do cp "$f" "$ctx/"; done
  local digest
  digest=$( (cd "$ctx" && sha256sum $(ls | sort); docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-32)
  local have
  have=$(docker image inspect --format '{{index .Config.Labels "io.kubeprov.conformance.input"}}' "${tags[0]}" 2>/dev/null || true)
  if [ "$have" = "$digest" ]; then
    for t in "${tags[@]:1}"; do docker tag "${tags[0]}" "$t"; done
  else
    local t0=$SECONDS targs=()
    for t in "${tags[@]}"; do targs+=(-t "$t"); done
    log "image $recipe -> ${tags[*]}"
    docker build -q --build-arg "BASE=$base" --label "io.kubeprov.conformance.input=$digest" "${targs[@]}" "$ctx" >/dev/null
    log "image $recipe built in $((SECONDS - t0))s"
  fi
  rm -rf "$ctx"
}
# stand_in RECIPE BASE TAG... [-- FILE...]: build_recipe, and the tags listed in images.txt (the
# images loaded into every node and pushed into the run's registry).
stand_in() {
  build_recipe "$@"
  shift 2
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do printf '%s\n' "$1" >> "$OUT/images.txt.tmp"; shift; done
}
build_images() {
  docker image inspect "$DEBIAN_BASE" >/dev/null 2>&1 ||
    { echo "build-conformance: the Debian base image $DEBIAN_BASE is missing (npm run artifacts makes it)" >&2; exit 1; }
  local bundle="$CACHE/bundle/$K8S_VERSION/bin"
  rm -f "$OUT/images.txt.tmp"
  local agnhost
  agnhost=$(image_ref Agnhost)
  stand_in agnhost "$DEBIAN_BASE" "$agnhost" "$(image_ref AgnhostPrev)" -- \
    "$OUT/agnhost" "$SRC/test/images/agnhost/porter/localhost.crt" "$SRC/test/images/agnhost/porter/localhost.key" "$bundle/coredns"
  stand_in glibc-dns-testing "$agnhost" "$(image_ref GlibcDnsTesting)"
  local pic
  for pic in Kitten Nautilus; do
    local dir
    dir="$SRC/test/images/$(echo "$pic" | tr 'A-Z' 'a-z')/html"
    stand_in webfiles "$agnhost" "$(image_ref "$pic")" -- "$dir"/*.jpg "$dir/data.json"
  done
  stand_in busybox "$DEBIAN_BASE" "$(image_ref BusyBox)"
  stand_in nginx "$DEBIAN_BASE" "$(image_ref Nginx)" "$(image_ref NginxNew)" -- "$here/templates/conformance/nginx-default.conf"
  stand_in nonroot "$DEBIAN_BASE" "$(image_ref NonRoot)"
  stand_in nonewprivs "$DEBIAN_BASE" "$(image_ref Nonewprivs)" -- "$OUT/nnp"
  stand_in sample-apiserver "$DEBIAN_BASE" "$(image_ref APIServer)" -- "$OUT/sample-apiserver"
  # Not a test image: the run's local registry that serves them (scripts/conformance.ts).
  build_recipe registry "$DEBIAN_BASE" "$REGISTRY_IMAGE" -- "$here/templates/conformance/registry.yml"
  mv "$OUT/images.txt.tmp" "$OUT/images.txt"
}

if [ ! -x "$OUT/ginkgo" ]; then
  timed ginkgo go build -trimpath -ldflags "-s -w" -o "$OUT/ginkgo.tmp" github.com/onsi/ginkgo/v2/ginkgo
fi
if [ ! -x "$OUT/agnhost" ]; then
  timed agnhost go build -trimpath -ldflags "-s -w" -o "$OUT/agnhost.tmp" k8s.io/kubernetes/test/images/agnhost
fi
if [ ! -x "$OUT/nnp" ]; then
  timed nnp go build -trimpath -ldflags "-s -w" -o "$OUT/nnp.tmp" k8s.io/kubernetes/test/images/nonewprivs
fi
if [ ! -x "$OUT/sample-apiserver" ]; then
  timed sample-apiserver go build -trimpath -ldflags "$ldflags" -o "$OUT/sample-apiserver.tmp" k8s.io/sample-apiserver
fi
[ $images -eq 1 ] && build_images
if [ $full -eq 1 ] && [ ! -x "$OUT/e2e.test" ]; then
  timed e2e.test go test -c -trimpath -ldflags "$ldflags" -o "$OUT/e2e.test.tmp" k8s.io/kubernetes/test/e2e
fi
if [ $slim -eq 1 ] && [ ! -x "$OUT/e2e-slim.test" ]; then
  rm -rf "$MOD/slim"
  cp -r "$here/scripts/conformance-slim" "$MOD/slim"
  timed e2e-slim.test go test -c -trimpath -ldflags "$ldflags" -o "$OUT/e2e-slim.test.tmp" kubeprov.local/conformance/slim
fi
log "conformance suite ready: $OUT"
