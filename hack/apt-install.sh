#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet (apt-get update only when some
# are missing), so set-up scripts stay idempotent and quick on a machine that has them.
# Usage: bash hack/apt-install.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
