#!/usr/bin/env bash
# The test command: installs what the tests start for real and a fresh machine lacks, then runs every test.
#   - Debian's redis-server (multi-process cluster tests)
#   - Debian's chromium (the playground's browser test, driven by Microsoft.Playwright)
#   - Debian's fortunes (the English corpus the README's training example and the training benchmark use)
#   - Debian's kubernetes-client (kubectl: the deploy tests render deploy/k8s's overlays with `kubectl kustomize`)
#   - npm's azurite (Azure Blob storage emulator) and openai (the official client, for the compatibility test),
#     pinned in tests/tools/package-lock.json
# Extra arguments go to `dotnet test` (e.g. ./test.sh --filter Grains).
set -euo pipefail
cd "$(dirname "$0")"

MISSING=()
command -v redis-server >/dev/null 2>&1 || MISSING+=(redis-server)
[ -x /usr/bin/chromium ] || MISSING+=(chromium)
[ -d /usr/share/games/fortunes ] || MISSING+=(fortunes)
command -v kubectl >/dev/null 2>&1 || MISSING+=(kubernetes-client)
if [ ${#MISSING[@]} -gt 0 ]; then
  echo "installing ${MISSING[*]} (Debian)…"
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

if [ ! -x tests/tools/node_modules/.bin/azurite-blob ] || [ ! -f tests/tools/node_modules/openai/package.json ]; then
  echo "installing azurite and openai (npm)…"
  (cd tests/tools && npm ci --no-audit --no-fund --silent)
fi

dotnet test "$@"
