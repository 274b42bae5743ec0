#!/usr/bin/env bash
# Builds kube-router (the peer in `make bench-policy`, run with only its network policy controller)
# from its Go module through the Go module proxy, into a cache folder outside git, the way
# hack/build-control-plane.sh builds kube-apiserver: a tiny local module requires kube-router and
# builds its cmd/kube-router. Idempotent; not on the `make test` path (only the benchmark needs it).
# Run it under `nice -n 10` (the Makefile does): a cold build takes several minutes on 2 cores.
# Prints the binary path on the last line of stdout.
set -euo pipefail

KR_VERSION="${KR_VERSION:-v2.1.0}"
CACHE="${TRELLIS_CACHE:-${HOME}/.cache/trellis}"
BIN="${CACHE}/bin"
OUT="${BIN}/kube-router-${KR_VERSION}"
WORK="${CACHE}/build/kube-router-${KR_VERSION}"
mkdir -p "${BIN}" "${WORK}"

if [[ ! -x "${OUT}" ]]; then
  cat > "${WORK}/go.mod" <<MOD
module trellis.local/kube-router

go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')

require github.com/cloudnativelabs/kube-router/v2 ${KR_VERSION}
MOD
  cat > "${WORK}/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
GO
  echo "building kube-router ${KR_VERSION}" >&2
  (cd "${WORK}" && GOFLAGS=-mod=mod go mod tidy >&2 || true
   cd "${WORK}" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "${OUT}.tmp" \
     github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
  mv "${OUT}.tmp" "${OUT}"
fi
echo "${OUT}"
