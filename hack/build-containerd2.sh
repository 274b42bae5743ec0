#!/usr/bin/env bash
# Builds containerd 2.x and its runc shim (containerd-shim-runc-v2) from the containerd Go module
# into ~/.cache/trellis/bin, idempotently, for the real-node lab's `--containerd 2` mode
# (docs/real-nodes.md). Not on the `make test` path: a cold build takes minutes on 2 cores.
# CGO is off, which leaves out the btrfs snapshotter (overlayfs is what the lab uses).
set -euo pipefail

CONTAINERD2_VERSION="${CONTAINERD2_VERSION:-v2.4.2}"
CACHE="${TRELLIS_CACHE:-${HOME}/.cache/trellis}"
BIN="${CACHE}/bin"
mkdir -p "${BIN}"
export CGO_ENABLED=0

build() { # build NAME PACKAGE
  local name="$1" pkg="$2"
  local out="${BIN}/${name}-${CONTAINERD2_VERSION}"
  if [[ -x "${out}" ]]; then echo "${name} ${CONTAINERD2_VERSION}: cached"; return; fi
  local gobin="${CACHE}/build/containerd-${CONTAINERD2_VERSION}"
  mkdir -p "${gobin}"
  echo "building ${name} ${CONTAINERD2_VERSION} (cold build takes minutes)"
  GOBIN="${gobin}" nice -n 10 go install -trimpath \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD2_VERSION}" \
    "github.com/containerd/containerd/v2/${pkg}@${CONTAINERD2_VERSION}"
  mv "${gobin}/${name}" "${out}"
}

build containerd cmd/containerd
build containerd-shim-runc-v2 cmd/containerd-shim-runc-v2
build ctr cmd/ctr
