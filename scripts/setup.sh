#!/usr/bin/env bash
# Installs what the test suite needs from Debian and the npm registry on a
# fresh machine. Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import websockets" 2>/dev/null || need+=(python3-websockets)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]} from Debian" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Deno itself (pinned in bin/deno) and every npm package, both locks frozen:
# deno.lock holds what the server runs with, deno.dev.lock what the tests,
# the bench and the page build need besides (see the README, "Dependencies").
./bin/deno --version >/dev/null
./bin/deno cache --frozen main.ts >/dev/null
./bin/deno cache --lock=deno.dev.lock --frozen main.ts tests/*.ts bench/*.ts scripts/*.ts examples/*/*.ts >/dev/null

# The bench's peers (Node + ws, Socket.IO and its Redis adapter, Bun), pinned
# in bench/peers/package-lock.json; only `deno task bench` uses them.
if command -v npm >/dev/null 2>&1 && [ ! -d bench/peers/node_modules ]; then
  (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
