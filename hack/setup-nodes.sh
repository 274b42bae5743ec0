#!/usr/bin/env bash
# What the real-node lab (`trellis lab up --real-nodes`, test/e2e/realnodes) needs beyond
# hack/setup.sh, idempotently: containerd and runc from Debian, gcc for the images' static launcher
# and pause binaries, and kubelet, kube-controller-manager and kube-scheduler built from the same
# k8s.io/kubernetes module as kube-apiserver (about 70 s after the API server's build; see
# docs/real-nodes.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/apt-install.sh containerd runc gcc libc6-dev util-linux iputils-ping
nice -n 10 bash hack/build-control-plane.sh --nodes
