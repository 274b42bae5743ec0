#!/usr/bin/env bash
# Builds kube-router (the peer in `make bench-policy`, run with only its network policy controller)
# from its Go module (hack/lib-go-module.sh): its cmd/kube-router. Idempotent; not on the `make test` path (only the benchmark needs it).
# Run it under `nice -n 10` (the Makefile does): a cold build takes several minutes on 2 cores.
# Prints the binary path on the last line of stdout.
set -euo pipefail

KR_VERSION="${KR_VERSION:-v2.1.0}"
source "$(dirname "$0")/lib-go-module.sh"
build_go_module kube-router github.com/cloudnativelabs/kube-router/v2 "${KR_VERSION}" \
  github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
