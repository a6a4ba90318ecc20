#!/usr/bin/env bash
# Broker CPU per durable c2c message, builds alternated (docs/benchmarks.md,
# "Round 6"). Each run starts a broker on a fresh store (loopback), runs
# imbench c2c 10 pairs at full speed (MSGS per pair) and then paced at RATE
# msg/s in total (PACED per pair), and prints delivered/s, latency and the
# broker's CPU seconds per 1,000 messages (user+system from /proc/PID/stat,
# the logins included). Builds run in the order A B B A, ROUNDS times, so that
# a machine's load moves both alike. Bounded: about 40 s per build and round.
#
#   test/c2ccpu.sh /tmp/main/imbroker /tmp/branch/imbroker
#   ROUNDS=3 RATE=8000 test/c2ccpu.sh A B
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 IMBROKER_A IMBROKER_B" >&2; exit 2; }
MSGS=${MSGS:-20000} RATE=${RATE:-5000} PACED=${PACED:-3000} ROUNDS=${ROUNDS:-1}
port=$((19931 + ${PORT_OFFSET:-0}))
work=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/imbench" ./cmd/imbench
key=c2ccpu-secret-key-0123456789abcdef
one() { # label bin imbench-args...
  local label=$1 bin=$2; shift 2
  rm -rf "$work/data"
  cat > "$work/c.yaml" <<YAML
app:
  secret_key: "$key"
mqtt:
  tcp: "127.0.0.1:$port"
  ws: ""
  max_clients: 0
http:
  address: ""
storage:
  dir: "$work/data"
log:
  level: error
YAML
  "$bin" -config "$work/c.yaml" >"$work/log" 2>&1 & pid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  local t0 t1 out
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$("$work/imbench" -json -broker "tcp://127.0.0.1:$port" -key "$key" -pid "$pid" -scenario c2c -clients 10 "$@")
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); d=r["delivered"]; print("%-28s %8.0f msg/s  p50 %7.2f  p99 %7.2f ms  lost %d  cpu/1k %.4f  load %s" % (sys.argv[2], r["delivered_per_sec"], r["P50"], r["P99"], r["lost"], (int(sys.argv[4])-int(sys.argv[3]))/int(sys.argv[5])/d*1000 if d else 0, sys.argv[6]))' \
    "$out" "$label" "$t0" "$t1" "$(getconf CLK_TCK)" "$(cut -d' ' -f1 /proc/loadavg)"
}
for _ in $(seq "$ROUNDS"); do
  for ab in A B B A; do
    bin=$1; [ "$ab" = B ] && bin=$2
    one "$ab full speed" "$bin" -messages "$MSGS"
    one "$ab paced $RATE/s" "$bin" -messages "$PACED" -msg-rate "$RATE"
  done
done
