#!/usr/bin/env bash
# Builds the trellis CNI plugin executable dist/trellis-cni from cni/ and src/cni/ with Bun's
# --compile (a standalone binary: no Node on the host). Idempotent: rebuilds only when a source
# file is newer than the output. `--candidates` also builds the Node-based candidate
# (dist/trellis-cni-node.mjs, a single bundled script run by the pinned Node) for comparison;
# see docs/cni-shim.md for the measurements and the choice.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist/trellis-cni
bun=node_modules/.bin/bun
mkdir -p dist

sources=(cni/*.ts src/cni/*.ts hack/build-cni.sh)
stale=0
if [[ ! -x "$out" ]]; then
  stale=1
else
  for f in "${sources[@]}"; do
    [[ "$f" -nt "$out" ]] && stale=1 && break
  done
fi

if ((stale)); then
  tmp="$out.tmp.$$"
  "$bun" build --compile --minify --bytecode --target=bun --outfile "$tmp" cni/main.ts >/dev/null
  mv -f "$tmp" "$out"
  echo "built $out ($(du -h "$out" | cut -f1))" >&2
fi

if [[ "${1:-}" == "--candidates" ]]; then
  "$bun" build --minify --target=node --format=esm --outfile dist/trellis-cni-node.mjs cni/main.ts >/dev/null
  node="$(readlink -f node_modules/.bin/node)"
  printf '#!/bin/sh\nexec %s --disable-warning=ExperimentalWarning %s "$@"\n' "$node" "$(pwd)/dist/trellis-cni-node.mjs" >dist/trellis-cni-node
  chmod +x dist/trellis-cni-node
  echo "built dist/trellis-cni-node (bundled script on the pinned Node)" >&2
fi
