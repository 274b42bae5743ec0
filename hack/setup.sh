#!/usr/bin/env bash
# Installs everything Trellis needs on a fresh Debian machine, as root, idempotently:
# Debian packages (iproute2, nftables, reference CNI plugins, ...), the npm packages including the
# pinned Node, and the Go-built kube-apiserver and etcd (cached outside git).
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/apt-install.sh iproute2 nftables iptables ipset conntrack containernetworking-plugins openssl \
  iputils-ping procps bird2 gcc libc6-dev iperf3

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.trellis-lock
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-fund --no-audit --loglevel=error
  cp package-lock.json "$stamp"
fi
if ! node_modules/.bin/node --version >/dev/null 2>&1; then
  echo "the pinned Node (npm package 'node') did not install; run: npm rebuild node" >&2
  exit 1
fi

bash hack/build-control-plane.sh
bash hack/build-tools.sh
