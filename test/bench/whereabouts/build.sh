#!/usr/bin/env bash
# Builds the Whereabouts IPAM plugin (the peer in test/bench/ipam-bench.ts) from its Go module
# (hack/lib-go-module.sh), with its one replace directive copied. v0.9.x cannot be verified against the checksum
# database from here, so we pin v0.8.0, whose package main is the module's cmd/ folder.
# Prints the binary path on the last line of stdout; the module source (CRDs) is in the module cache.
set -euo pipefail

WB_VERSION="${WB_VERSION:-v0.8.0}"
source "$(dirname "$0")/../../../hack/lib-go-module.sh"
build_go_module whereabouts github.com/k8snetworkplumbingwg/whereabouts "${WB_VERSION}" \
  github.com/k8snetworkplumbingwg/whereabouts/cmd \
  'github.com/gogo/protobuf => github.com/gogo/protobuf v1.3.2'
