#!/usr/bin/env bash
# Builds containerd 2.x and its runc shim (containerd-shim-runc-v2) from the containerd Go module
# into ~/.cache/trellis/bin, idempotently, for the real-node lab's `--containerd 2` mode
# (docs/real-nodes.md). Not on the `make test` path: a cold build takes minutes on 2 cores.
# CGO is off, which leaves out the btrfs snapshotter (overlayfs is what the lab uses).
# Also portmap from the reference plugins at a release that speaks CNI 1.1 (STATUS): Debian's
# 1.1.1 stops at 1.0.0, and a runtime only sends STATUS to a chain whose conflist says 1.1.0.
set -euo pipefail

CONTAINERD2_VERSION="${CONTAINERD2_VERSION:-v2.4.2}"
CACHE="${TRELLIS_CACHE:-${HOME}/.cache/trellis}"
BIN="${CACHE}/bin"
mkdir -p "${BIN}"
export CGO_ENABLED=0

PLUGINS_VERSION="${PLUGINS_VERSION:-v1.9.1}"

build() { # build NAME MODULE PACKAGE VERSION [LDFLAGS]
  local name="$1" module="$2" pkg="$3" version="$4" ldflags="${5:-}"
  local out="${BIN}/${name}-${version}"
  if [[ -x "${out}" ]]; then echo "${name} ${version}: cached"; return; fi
  local gobin="${CACHE}/build/gobin-${name}-${version}"
  mkdir -p "${gobin}"
  echo "building ${name} ${version} (cold build takes minutes)"
  GOBIN="${gobin}" nice -n 10 go install -trimpath -ldflags "-s -w ${ldflags}" "${module}/${pkg}@${version}"
  mv "${gobin}/$(basename "${pkg}")" "${out}"
}

cd_mod=github.com/containerd/containerd/v2
cd_ver="-X ${cd_mod}/version.Version=${CONTAINERD2_VERSION}"
build containerd "${cd_mod}" cmd/containerd "${CONTAINERD2_VERSION}" "${cd_ver}"
build containerd-shim-runc-v2 "${cd_mod}" cmd/containerd-shim-runc-v2 "${CONTAINERD2_VERSION}" "${cd_ver}"
build ctr "${cd_mod}" cmd/ctr "${CONTAINERD2_VERSION}" "${cd_ver}"
build portmap github.com/containernetworking/plugins plugins/meta/portmap "${PLUGINS_VERSION}"
