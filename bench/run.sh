#!/usr/bin/env bash
# Load benchmark: the same request, in the same run, three ways —
#   direct   wrk -> mock provider
#   nginx    wrk -> nginx (keep-alive upstream) -> mock provider   (the reference proxy hop)
#   gateway  wrk -> inferbridge (ib/balanced -> openai) -> mock provider
# and reports throughput, latency percentiles, CPU time per request of the proxy process and its
# memory, as ratios against the direct call. Then the added time to first byte of a streamed
# request (bench/ttfb.mjs). Needs wrk and (optionally) nginx: apt-get install wrk nginx-light.
#
#   bench/run.sh [-d SECONDS] [-c CONNECTIONS] [-t WRK_THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=10
connections=32
threads=1
while getopts "d:c:t:" opt; do
  case "$opt" in
    d) duration=$OPTARG ;;
    c) connections=$OPTARG ;;
    t) threads=$OPTARG ;;
    *) echo "usage: $0 [-d seconds] [-c connections] [-t wrk threads]" >&2; exit 2 ;;
  esac
done

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 2; }
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target inferbridge mock_provider -j "$(nproc)" >/dev/null

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts a server that prints `listening on HOST:PORT` first; sets $port and $pid.
start() {
  local out=$1; shift
  "$@" >"$out" 2>"$out.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 500); do
    if grep -q "listening on" "$out" 2>/dev/null; then
      port=$(grep -o 'listening on [^ ]*' "$out" | head -1 | sed 's/.*://')
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$out.err" >&2; return 1; }
    sleep 0.01
  done
  echo "timed out starting $*" >&2
  return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

start "$work/mock.out" build/bench/mock_provider --listen 127.0.0.1:0 --record-limit 0
mock_port=$port
mock_pid=$pid

start "$work/gw.out" env IB_LISTEN=127.0.0.1:0 IB_DATA_DIR="$work/data" IB_SIGNUPS_PER_HOUR=0 \
  IB_OPENAI_BASE_URL="http://127.0.0.1:$mock_port/openai/v1" build/inferbridge
gw_port=$port
gw_pid=$pid
key=$(curl -s -X POST "127.0.0.1:$gw_port/v1/users" -d '{"email":"bench@example.com"}' |
  sed 's/.*"api_key":"\([^"]*\)".*/\1/')
curl -s -o /dev/null -X POST "127.0.0.1:$gw_port/v1/keys" -H "Authorization: Bearer $key" \
  -d '{"provider":"openai","api_key":"sk-bench-0123456789abcdef"}'

nginx_port=""
if command -v nginx >/dev/null; then
  nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  pids+=($!)
  for _ in $(seq 1 200); do
    [ -f "$work/nginx/nginx.pid" ] && break
    sleep 0.01
  done
  nginx_pid=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | head -1)
fi

body='{"model":"%s","messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
lua() {
  cat >"$work/$1.lua" <<EOF
wrk.method = "POST"
wrk.body = '$(printf "$body" "$2")'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $3"
EOF
}
lua direct gpt-4.1-mini sk-bench-0123456789abcdef
lua gateway ib/balanced "$key"

# run NAME URL LUA PROXY_PID -> one result line
declare -A rps p50 p90 p99 cpu rss
run() {
  local name=$1 url=$2 script=$3 proxy=$4
  wrk -t"$threads" -c"$connections" -d2s -s "$work/$script.lua" "$url" >/dev/null  # warm-up
  local m0 g0 before after
  m0=$(cpu_ticks "$mock_pid")
  [ -n "$proxy" ] && before=$(cpu_ticks "$proxy")
  wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$work/$script.lua" "$url" \
    >"$work/$name.wrk"
  [ -n "$proxy" ] && after=$(cpu_ticks "$proxy")
  local total
  total=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
  rps[$name]=$(awk '/Requests\/sec/ {print $2}' "$work/$name.wrk")
  p50[$name]=$(awk '$1=="50%" {print $2}' "$work/$name.wrk")
  p90[$name]=$(awk '$1=="90%" {print $2}' "$work/$name.wrk")
  p99[$name]=$(awk '$1=="99%" {print $2}' "$work/$name.wrk")
  if grep -q "Non-2xx" "$work/$name.wrk"; then
    echo "warning: $name had non-2xx answers: $(grep Non-2xx "$work/$name.wrk")" >&2
  fi
  if [ -n "$proxy" ]; then
    cpu[$name]=$(awk -v d="$((after - before))" -v n="$total" -v hz="$hz" \
      'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    rss[$name]=$(( $(rss_kb "$proxy") / 1024 ))
  else
    cpu[$name]="-"
    rss[$name]="-"
  fi
}

run direct "http://127.0.0.1:$mock_port/openai/v1/chat/completions" direct ""
[ -n "$nginx_port" ] && run nginx "http://127.0.0.1:$nginx_port/openai/v1/chat/completions" direct "$nginx_pid"
run gateway "http://127.0.0.1:$gw_port/v1/chat/completions" gateway "$gw_pid"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "InferBridge load benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$threads -c$connections -d${duration}s"
echo
echo "| path | requests/s | vs direct | p50 | p90 | p99 | proxy CPU µs/request | proxy RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for name in direct nginx gateway; do
  [ -z "${rps[$name]:-}" ] && continue
  echo "| $name | ${rps[$name]} | $(ratio "${rps[$name]}" "${rps[direct]}") | ${p50[$name]} | ${p90[$name]} | ${p99[$name]} | ${cpu[$name]} | ${rss[$name]} |"
done
echo

if command -v node >/dev/null; then
  node bench/ttfb.mjs --direct "http://127.0.0.1:$mock_port/openai/v1/chat/completions" \
    --gateway "http://127.0.0.1:$gw_port/v1/chat/completions" --key "$key" --n 500
fi
