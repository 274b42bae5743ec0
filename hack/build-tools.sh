#!/usr/bin/env bash
# Builds test tools that Debian does not package into the cache: helm, for the chart tests.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
BIN="${TRELLIS_CACHE:-${HOME}/.cache/trellis}/bin"
mkdir -p "${BIN}"
if [[ ! -x "${BIN}/helm-${HELM_VERSION}" ]]; then
  echo "building helm ${HELM_VERSION}"
  tmp="$(mktemp -d)"
  GOBIN="${tmp}" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  mv "${tmp}/helm" "${BIN}/helm-${HELM_VERSION}"
  rm -rf "${tmp}"
fi
ln -sfn "helm-${HELM_VERSION}" "${BIN}/helm"
