#!/usr/bin/env bash
# What the real-node lab (`trellis lab up --real-nodes`, test/e2e/realnodes) needs beyond
# hack/setup.sh, idempotently: containerd and runc from Debian, gcc for the images' static launcher
# and pause binaries, and kubelet, kube-controller-manager and kube-scheduler built from the same
# k8s.io/kubernetes module as kube-apiserver (about 70 s after the API server's build; see
# docs/real-nodes.md).
set -euo pipefail
cd "$(dirname "$0")/.."
debs=(containerd runc gcc libc6-dev util-linux iputils-ping)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
nice -n 10 bash hack/build-control-plane.sh --nodes
