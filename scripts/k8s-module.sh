# Sourced by scripts/build-bundle.sh and scripts/build-conformance.sh: the Go wrapper module that
# requires k8s.io/kubernetes at one version (which cannot be built as a dependency as it stands:
# its go.mod replaces every k8s.io staging module with ./staging/...), and the version flags its
# binaries are built with.

# k8s_wrapper_module MODULE VERSION PACKAGE...: in the current directory, a go.mod named MODULE that
# requires k8s.io/kubernetes VERSION, maps each staging module it replaces to the published
# v0.<minor>.<patch>, and (through tools.go) names PACKAGE... so `go mod tidy` records all they need.
k8s_wrapper_module() {
  local module=$1 version=$2
  shift 2
  local minor patch gomod
  minor=$(echo "$version" | cut -d. -f2)
  patch=$(echo "$version" | cut -d. -f3)
  rm -f go.mod
  go mod init "$module" >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "require k8s.io/kubernetes $version"
    grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="v0.$minor.$patch" '{print "replace " $1 " => " $1 " " v}'
  } >> go.mod
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
    printf ')\n'
  } > tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
}

# k8s_ldflags VERSION: the -ldflags that make the binaries report VERSION (as the release builds do).
k8s_ldflags() {
  local version=$1 minor
  minor=$(echo "$version" | cut -d. -f2)
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
}
