#!/usr/bin/env bash
# A production-shaped cluster on this machine, as local processes: Redis (Orleans' membership), Azurite (Azure Blob
# storage), N silos and the standalone gateway, each on a free loopback port.
#
#   deploy/local/cluster.sh up N [--model NAME=SOURCE ...]   start, wait until the gateway's /readyz answers 200
#   deploy/local/cluster.sh down                             stop everything it started, by process id
#
# `up` prints the URLs and the API key; its last line is a JSON object:
#   {"gateway": URL, "api_key": KEY, "admin_key": KEY, "silo_pids": [...], "gateway_pid": N, "redis_pid": N, "azurite_pid": N}
# The silos and the gateway run the containers' entry points (dotnet gpt2o-silo.dll, dotnet gpt2o-gateway.dll) with the
# containers' configuration: Gpt2Orleans__* environment variables for Redis clustering and blob storage.
#
# Environment: GPT2O_CLUSTER_DIR (state, logs, data; default ~/.cache/gpt2orleans/local-cluster), GPT2O_SILO_DLL and
# GPT2O_GATEWAY_DLL (prebuilt entry points; default: published here from src/ on first use), GPT2O_API_KEY,
# GPT2O_ADMIN_KEY (default: generated), GPT2O_READY_SECONDS (default 300), GPT2O_DRAIN_SECONDS (default 10).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${GPT2O_CLUSTER_DIR:-$HOME/.cache/gpt2orleans/local-cluster}"
PIDS="$STATE/pids"

fail() { echo "error: $*" >&2; exit 2; }
usage() { fail "usage: $0 up N [--model NAME=SOURCE ...] | down"; }

# A loopback port nothing listens on (bash's /dev/tcp connects when something does).
free_port() {
  local port
  while true; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! grep -qx "$port" "$STATE/ports" 2>/dev/null; then
      echo "$port" >> "$STATE/ports"
      echo "$port"
      return
    fi
  done
}

wait_port() { # PORT PID NAME: until the port accepts connections, or the process dies
  local deadline=$((SECONDS + 120))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || { tail -n 30 "$STATE/$3.log" >&2; stop_all; fail "$3 exited while starting (log: $STATE/$3.log)"; }
    [ $SECONDS -lt $deadline ] || { stop_all; fail "$3 did not listen on port $1 within 120 s (log: $STATE/$3.log)"; }
    sleep 0.2
  done
}

http_status() { # PORT PATH: the response's status line, or nothing (bash's /dev/tcp: no curl needed), within 5 s
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3 && head -n 1 <&3' _ "$1" "$2" 2>/dev/null || true
}

start() { # NAME COMMAND...: in the background, its output in NAME.log, its pid recorded
  local name="$1"; shift
  "$@" > "$STATE/$name.log" 2>&1 &
  echo "$name $!" >> "$PIDS"
  echo $!
}

stop_group() { # NAME-PREFIX SECONDS: SIGTERM to those processes, then SIGKILL to any still running after SECONDS
  local name pid pids=()
  while read -r name pid; do [[ "$name" == $1* ]] && pids+=("$pid"); done < "$PIDS"
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + $2))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

stop_all() {
  [ -f "$PIDS" ] || return 0
  # The gateway first, then the silos, which drain (GPT2O_DRAIN_SECONDS) and write their sessions while storage and
  # Redis still run, then those two.
  stop_group gateway 15
  stop_group silo- $((${GPT2O_DRAIN_SECONDS:-10} + 30))
  stop_group azurite 5 # it reports "successfully closed" at once but its node process may linger: then it is killed
  stop_group redis 10
  rm -f "$PIDS" "$STATE/ports" "$STATE/cluster.json"
}

publish() { # PROJECT DLL: publishes once into the state folder
  local out="$STATE/bin/$1"
  if [ ! -f "$out/$2" ]; then
    echo "publishing src/$1 (Release) into $out …" >&2
    dotnet publish "$ROOT/src/$1" -c Release -o "$out" --nologo -v quiet >&2 || fail "dotnet publish src/$1 failed"
  fi
  echo "$out/$2"
}

new_key() { echo "sk-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"; }

up() {
  [ $# -ge 1 ] && [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 16 ] || fail "up needs the number of silos, 1 to 16, got '${1:-}'"
  local count="$1"; shift
  local models=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --model) [ $# -ge 2 ] || fail "--model needs NAME=SOURCE"; models+=(--model "$2"); shift 2 ;;
      --model=*) models+=(--model "${1#--model=}"); shift ;;
      *) fail "unknown argument '$1' (up N [--model NAME=SOURCE ...])" ;;
    esac
  done
  mkdir -p "$STATE"
  if [ -f "$PIDS" ]; then
    while read -r _ pid; do kill -0 "$pid" 2>/dev/null && fail "a cluster is already up (pid $pid, $STATE); run '$0 down' first"; done < "$PIDS"
    rm -f "$PIDS" "$STATE/ports"
  fi
  command -v dotnet >/dev/null || fail "dotnet is not installed"
  command -v redis-server >/dev/null || fail "redis-server is not installed (Debian: apt-get install redis-server)"
  local azurite
  azurite="$(command -v azurite-blob || true)"
  [ -n "$azurite" ] || azurite="$ROOT/tests/tools/node_modules/.bin/azurite-blob"
  [ -x "$azurite" ] || fail "azurite-blob is not installed (npm install -g azurite, or: (cd tests/tools && npm ci))"
  local silo_dll gateway_dll
  silo_dll="${GPT2O_SILO_DLL:-$(publish Silo gpt2o-silo.dll)}"
  gateway_dll="${GPT2O_GATEWAY_DLL:-$(publish Gateway gpt2o-gateway.dll)}"
  [ -f "$silo_dll" ] || fail "no silo at $silo_dll"
  [ -f "$gateway_dll" ] || fail "no gateway at $gateway_dll"

  local api_key="${GPT2O_API_KEY:-$(new_key)}" admin_key="${GPT2O_ADMIN_KEY:-$(new_key)}"
  local cluster_id="local-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
  : > "$STATE/ports"

  local redis_port azurite_port redis_pid azurite_pid
  redis_port="$(free_port)"
  redis_pid="$(start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no)"
  wait_port "$redis_port" "$redis_pid" redis
  azurite_port="$(free_port)"
  mkdir -p "$STATE/azurite"
  azurite_pid="$(start azurite "$azurite" --blobHost 127.0.0.1 --blobPort "$azurite_port" --location "$STATE/azurite" --silent --skipApiVersionCheck)"
  wait_port "$azurite_port" "$azurite_pid" azurite
  local blob="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$azurite_port/devstoreaccount1;"

  # The containers' configuration (deploy/docker/compose.yaml): Redis clustering, blob storage.
  export Gpt2Orleans__Clustering=redis Gpt2Orleans__Redis="127.0.0.1:$redis_port" Gpt2Orleans__ClusterId="$cluster_id"
  export Gpt2Orleans__Storage=azureblob Gpt2Orleans__BlobConnectionString="$blob" Gpt2Orleans__DrainSeconds="${GPT2O_DRAIN_SECONDS:-10}"
  export GPT2O_API_KEY="$api_key"
  local silo_pids=() silo_urls=() i
  for ((i = 0; i < count; i++)); do
    local silo_port gateway_port http_port pid
    silo_port="$(free_port)"; gateway_port="$(free_port)"; http_port="$(free_port)"
    pid="$(cd "$(dirname "$silo_dll")" && Gpt2Orleans__DataDirectory="$STATE/silo-$i" start "silo-$i" dotnet "$silo_dll" \
      --silo-port "$silo_port" --gateway-port "$gateway_port" --urls "http://127.0.0.1:$http_port" ${models[@]+"${models[@]}"})"
    silo_pids+=("$pid"); silo_urls+=("http://127.0.0.1:$http_port")
    wait_port "$gateway_port" "$pid" "silo-$i"
  done
  unset GPT2O_API_KEY

  local gateway_port gateway_pid gateway_url
  gateway_port="$(free_port)"
  gateway_url="http://127.0.0.1:$gateway_port"
  gateway_pid="$(cd "$(dirname "$gateway_dll")" && GPT2O_ADMIN_KEY="$admin_key" start gateway dotnet "$gateway_dll" \
    --redis "127.0.0.1:$redis_port" --cluster-id "$cluster_id" --urls "$gateway_url")"
  wait_port "$gateway_port" "$gateway_pid" gateway

  # Ready when every model the catalog lists is loaded on each of its silos.
  local deadline=$((SECONDS + ${GPT2O_READY_SECONDS:-300})) status
  while true; do
    status="$(http_status "$gateway_port" /readyz)"
    [[ "$status" == *" 200"* ]] && break
    while read -r name pid; do
      kill -0 "$pid" 2>/dev/null || { tail -n 30 "$STATE/$name.log" >&2; stop_all; fail "$name exited before the cluster was ready (log: $STATE/$name.log)"; }
    done < "$PIDS"
    [ $SECONDS -lt $deadline ] || { stop_all; fail "the gateway's /readyz was not 200 within ${GPT2O_READY_SECONDS:-300} s (logs: $STATE)"; }
    sleep 0.5
  done

  local json
  json="$(printf '{"gateway": "%s", "api_key": "%s", "admin_key": "%s", "silo_pids": [%s], "gateway_pid": %s, "redis_pid": %s, "azurite_pid": %s}' \
    "$gateway_url" "$api_key" "$admin_key" "$(IFS=,; echo "${silo_pids[*]}" | sed 's/,/, /g')" "$gateway_pid" "$redis_pid" "$azurite_pid")"
  echo "$json" > "$STATE/cluster.json"
  echo "gateway     $gateway_url   (OpenAI API: $gateway_url/v1, playground: $gateway_url/)"
  echo "silos       ${silo_urls[*]}   (each co-hosts the API too)"
  echo "redis       127.0.0.1:$redis_port   azurite 127.0.0.1:$azurite_port   cluster id $cluster_id"
  echo "api key     $api_key   (tenant dev)"
  echo "admin key   $admin_key"
  echo "logs        $STATE/*.log   stop with: $0 down"
  echo "$json"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) [ $# -eq 1 ] || usage; stop_all; echo "stopped" ;;
  *) usage ;;
esac
