#!/usr/bin/env bash
# Builds the Whereabouts IPAM plugin (the peer in test/bench/ipam-bench.ts) from its Go module
# through the Go module proxy, into a cache folder outside git, the way hack/build-control-plane.sh
# builds kube-apiserver: a tiny local module requires whereabouts and copies its one replace
# directive (module zips carry no vendor/ folder). v0.9.x cannot be verified against the checksum
# database from here, so we pin v0.8.0, whose package main is the module's cmd/ folder.
# Prints the binary path on the last line of stdout; the module source (CRDs) is in the module cache.
set -euo pipefail

WB_VERSION="${WB_VERSION:-v0.8.0}"
CACHE="${TRELLIS_CACHE:-${HOME}/.cache/trellis}"
BIN="${CACHE}/bin"
OUT="${BIN}/whereabouts-${WB_VERSION}"
WORK="${CACHE}/build/whereabouts-${WB_VERSION}"
mkdir -p "${BIN}" "${WORK}"

if [[ ! -x "${OUT}" ]]; then
  cat > "${WORK}/go.mod" <<MOD
module trellis.local/whereabouts

go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')

require github.com/k8snetworkplumbingwg/whereabouts ${WB_VERSION}

replace github.com/gogo/protobuf => github.com/gogo/protobuf v1.3.2
MOD
  cat > "${WORK}/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/k8snetworkplumbingwg/whereabouts/cmd"
GO
  echo "building whereabouts ${WB_VERSION}" >&2
  (cd "${WORK}" && GOFLAGS=-mod=mod go mod tidy >&2 || true
   cd "${WORK}" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "${OUT}.tmp" github.com/k8snetworkplumbingwg/whereabouts/cmd)
  mv "${OUT}.tmp" "${OUT}"
fi
echo "${OUT}"
