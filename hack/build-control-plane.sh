#!/usr/bin/env bash
# Builds the real test control plane (kube-apiserver, etcd) from Go modules into a cache outside git.
# `--nodes` also builds what the real-node lab needs from the same module: kubelet,
# kube-controller-manager and kube-scheduler (cold: a few more minutes; see docs/real-nodes.md).
# `go install pkg@version` cannot build k8s.io/kubernetes (its go.mod replaces staging modules with
# local paths), so we write a tiny module that requires it and maps every k8s.io/* v0.0.0 staging
# requirement to the matching published v0.Y.Z. Reuses whatever is already cached.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE="${TRELLIS_CACHE:-${HOME}/.cache/trellis}"
BIN="${CACHE}/bin"
mkdir -p "${BIN}"

export GOFLAGS="${GOFLAGS:--mod=mod}"
export CGO_ENABLED=0

# Builds one command of k8s.io/kubernetes (kube-apiserver for the control plane, kubectl for tests
# and users of the lab) at K8S_VERSION.
build_kube_cmd() {
  local cmd="$1"
  local out="${BIN}/${cmd}-${K8S_VERSION}"
  if [[ -x "${out}" ]]; then echo "${cmd} ${K8S_VERSION}: cached"; return; fi
  local work="${CACHE}/build/kube-${K8S_VERSION}"
  mkdir -p "${work}"
  local staging="v0.${K8S_VERSION#v1.}"
  # The kubernetes go.mod lists its staging modules at v0.0.0; read it from the module proxy.
  local gomod
  gomod="$(cd "${work}" && GOFLAGS= go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module trellis.local/controlplane"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0\s*$' "${gomod}" | awk -v v="${staging}" '{print "replace " $1 " => " $1 " " v}'
  } > "${work}/go.mod"
  cat > "${work}/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  echo "building ${cmd} ${K8S_VERSION} (cold build takes minutes)"
  (cd "${work}" && go mod tidy >/dev/null 2>&1 || true
   cd "${work}" && go build -trimpath -o "${out}.tmp" \
     -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#v1.}" \
     "k8s.io/kubernetes/cmd/${cmd}")
  mv "${out}.tmp" "${out}"
}

build_etcd() {
  local out="${BIN}/etcd-${ETCD_VERSION}"
  if [[ -x "${out}" ]]; then echo "etcd ${ETCD_VERSION}: cached"; return; fi
  local work="${CACHE}/build/etcd-${ETCD_VERSION}"
  mkdir -p "${work}"
  cat > "${work}/go.mod" <<MOD
module trellis.local/etcd

go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
MOD
  cat > "${work}/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  echo "building etcd ${ETCD_VERSION}"
  (cd "${work}" && go mod tidy >/dev/null 2>&1 || true
   cd "${work}" && go build -trimpath -ldflags "-s -w" -o "${out}.tmp" go.etcd.io/etcd/server/v3)
  mv "${out}.tmp" "${out}"
}

build_etcd
build_kube_cmd kube-apiserver
build_kube_cmd kubectl
ln -sfn "etcd-${ETCD_VERSION}" "${BIN}/etcd"
ln -sfn "kube-apiserver-${K8S_VERSION}" "${BIN}/kube-apiserver"
ln -sfn "kubectl-${K8S_VERSION}" "${BIN}/kubectl"
if [[ "${1:-}" == "--nodes" ]]; then
  for cmd in kubelet kube-controller-manager kube-scheduler; do
    build_kube_cmd "${cmd}"
    ln -sfn "${cmd}-${K8S_VERSION}" "${BIN}/${cmd}"
  done
fi
echo "control plane ready in ${BIN}"
