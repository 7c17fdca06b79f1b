#!/usr/bin/env bash
# The test command: installs what the tests start for real and a fresh machine lacks, then runs every test.
#   - Debian's redis-server (multi-process cluster tests)
#   - npm's azurite (Azure Blob storage emulator), pinned in tests/tools/package-lock.json
# Extra arguments go to `dotnet test` (e.g. ./test.sh --filter Grains).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (Debian)…"
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

if [ ! -x tests/tools/node_modules/.bin/azurite-blob ]; then
  echo "installing azurite (npm)…"
  (cd tests/tools && npm ci --no-audit --no-fund --silent)
fi

dotnet test "$@"
