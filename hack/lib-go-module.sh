# Sourced by the peer build scripts (hack/build-kube-router.sh, test/bench/whereabouts/build.sh):
# builds one main package of a Go module fetched through the Go module proxy, the way
# hack/build-control-plane.sh builds kube-apiserver: a tiny local module requires the peer's module
# (plus any replace directives its own go.mod needs, since module zips carry no vendor/ folder) and
# builds the package, into a cache folder outside git. Idempotent: a built binary is kept.

# build_go_module NAME MODULE VERSION PACKAGE [REPLACE...]: prints the binary's path on stdout.
build_go_module() {
  local name="$1" module="$2" version="$3" package="$4"
  shift 4
  local cache="${TRELLIS_CACHE:-${HOME}/.cache/trellis}"
  local out="${cache}/bin/${name}-${version}"
  local work="${cache}/build/${name}-${version}"
  mkdir -p "${cache}/bin" "${work}"
  if [[ ! -x "${out}" ]]; then
    {
      echo "module trellis.local/${name}"
      echo
      echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
      echo
      echo "require ${module} ${version}"
      for r in "$@"; do
        echo
        echo "replace ${r}"
      done
    } > "${work}/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "${package}" > "${work}/tools.go"
    echo "building ${name} ${version}" >&2
    (cd "${work}" && GOFLAGS=-mod=mod go mod tidy >&2 || true
     cd "${work}" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "${out}.tmp" "${package}")
    mv "${out}.tmp" "${out}"
  fi
  echo "${out}"
}
