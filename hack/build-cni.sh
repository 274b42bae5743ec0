#!/usr/bin/env bash
# Builds the trellis CNI plugin executable dist/trellis-cni: a static C forwarder (cni/trellis-cni.c)
# built with Debian's gcc, with the spec versions and the default socket taken from
# src/cni/*.ts (one source of truth) through a generated header. Idempotent: rebuilds only when a
# source is newer than the output. `--candidates` also builds the TypeScript shim (cni/main.ts)
# two ways for the benchmark's side-by-side figures: Bun --compile (dist/trellis-cni-bun) and a
# bundled script on the pinned Node (dist/trellis-cni-node). See docs/cni-shim.md.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist/trellis-cni
node=node_modules/.bin/node
bun=node_modules/.bin/bun
mkdir -p dist

stale() { # stale OUTPUT SOURCE...: is OUTPUT missing or older than a source?
  local o=$1 f
  shift
  [[ -x "$o" ]] || return 0
  for f in "$@"; do [[ "$f" -nt "$o" ]] && return 0; done
  return 1
}

if stale "$out" cni/trellis-cni.c src/cni/*.ts hack/build-cni.sh; then
  if ! command -v gcc >/dev/null || [[ ! -e /usr/lib/x86_64-linux-gnu/libc.a && ! -e /usr/lib/aarch64-linux-gnu/libc.a ]]; then
    echo "hack/build-cni.sh needs gcc and libc6-dev (apt-get install gcc libc6-dev; make setup does it)" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # The constants the C must share with the TypeScript side, read from the TS modules themselves.
  "$node" --input-type=module -e '
    const v = await import("./src/cni/version.ts");
    const t = await import("./src/cni/types.ts");
    const q = (s) => JSON.stringify(String(s));
    console.log(`static const char *const SUPPORTED_VERSIONS[] = {${v.SUPPORTED_VERSIONS.map(q).join(", ")}, 0};`);
    console.log(`#define LATEST_VERSION ${q(v.LATEST_VERSION)}`);
    console.log(`#define DEFAULT_SOCKET ${q(t.DEFAULT_SOCKET)}`);
  ' >"$tmp/cni-constants.h"
  gcc -std=c11 -static -Os -s -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
    -I "$tmp" -o "$tmp/trellis-cni" cni/trellis-cni.c
  mv -f "$tmp/trellis-cni" "$out"
  echo "built $out ($(du -h "$out" | cut -f1), static C)" >&2
fi

if [[ "${1:-}" == "--candidates" ]]; then
  if stale dist/trellis-cni-bun cni/main.ts src/cni/*.ts hack/build-cni.sh; then
    "$bun" build --compile --minify --bytecode --target=bun --outfile dist/trellis-cni-bun.tmp cni/main.ts >/dev/null
    mv -f dist/trellis-cni-bun.tmp dist/trellis-cni-bun
    echo "built dist/trellis-cni-bun (TypeScript shim, Bun --compile)" >&2
  fi
  "$bun" build --minify --target=node --format=esm --outfile dist/trellis-cni-node.mjs cni/main.ts >/dev/null
  nodebin="$(readlink -f "$node")"
  printf '#!/bin/sh\nexec %s --disable-warning=ExperimentalWarning %s "$@"\n' "$nodebin" "$(pwd)/dist/trellis-cni-node.mjs" >dist/trellis-cni-node
  chmod +x dist/trellis-cni-node
  echo "built dist/trellis-cni-node (TypeScript shim bundled, on the pinned Node)" >&2
fi
