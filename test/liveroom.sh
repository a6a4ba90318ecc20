#!/usr/bin/env bash
# The 10,000-member live room alone, several runs: a fresh imbroker (and
# store) per run, imbench's group scenario in its own process, one line per
# run and the medians. Loopback only; bounded in count and time
# (docs/benchmarks.md, "Round 6: the live room").
#
#   test/liveroom.sh                       # RUNS=5 runs of MSGS=10 paced messages to MEMBERS=10000
#   IMBROKER_BIN=/tmp/old/imbroker IMBENCH_BIN=/tmp/old/imbench test/liveroom.sh   # prebuilt binaries
#   PORT_OFFSET=100 test/liveroom.sh       # other ports, beside another run
#   PROFILE=1 test/liveroom.sh             # also the broker's CPU profile of each run's paced phase
#
# Per run: reach all p50 / max (ms from the send to the last member's copy,
# one message at a time: the issue's figure), the broker's and imbench's CPU
# ms per message in that phase, the burst phase's deliveries/s, and the
# 1-minute load average (the machine's other work moves the reach times more
# than most changes; the CPU per message moves less).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
MSGS=${MSGS:-10}
MEMBERS=${MEMBERS:-10000}
off=${PORT_OFFSET:-0}
port=$((18871 + off)) hport=$((18872 + off))
work=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ -n "${IMBROKER_BIN:-}" ]; then cp "$IMBROKER_BIN" "$work/imbroker"; else go build -o "$work/imbroker" ./cmd/imbroker; fi
if [ -n "${IMBENCH_BIN:-}" ]; then cp "$IMBENCH_BIN" "$work/imbench"; else go build -o "$work/imbench" ./cmd/imbench; fi

key=liveroom-secret-key-0123456789abcdef
cat > "$work/imbroker.yaml" <<YAML
app:
  secret_key: "$key"
mqtt:
  tcp: "127.0.0.1:$port"
  ws: ""
  max_clients: 0
http:
  address: "127.0.0.1:$hport"
  pprof: true
storage:
  dir: "$work/data"
groups:
  rate_limit: 1000000
log:
  level: error
YAML

results=()
for run in $(seq "$RUNS"); do
  rm -rf "$work/data"
  "$work/imbroker" -config "$work/imbroker.yaml" >"$work/imbroker.log" 2>&1 & pid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null || { echo "imbroker exited at start (port in use? try PORT_OFFSET):" >&2; tail -n 3 "$work/imbroker.log" >&2; exit 1; }
  : >"$work/progress"
  prof= pp=
  if [ -n "${PROFILE:-}" ]; then
    prof="liveroom-$run.pprof"
    # The paced phase starts with the first send ("sent 1" in the progress line).
    rm -f "$work/profiling"
    ( for _ in $(seq 3000); do grep -q 'sent [1-9]' "$work/progress" && break; sleep 0.1; done
      touch "$work/profiling"
      curl -s -o "$prof" "http://127.0.0.1:$hport/debug/pprof/profile?seconds=3" ) & pp=$!
  fi
  "$work/imbench" -broker "tcp://127.0.0.1:$port" -key "$key" -pid "$pid" -scenario group \
    -clients "$MEMBERS" -messages "$MSGS" -timeout 5m >"$work/out" 2>"$work/progress"
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ -n "$pp" ]; then # a short run may end before its first progress line
    [ -e "$work/profiling" ] || { kill "$pp" 2>/dev/null || true; prof="(none: the run ended before its first progress line)"; }
    wait "$pp" 2>/dev/null || true
  fi
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
  line=$(awk -v run="$run" -v load="$load" -v prof="$prof" '
    /^reach_all_ms_p50:/ {p50=$2} /^reach_all_ms_max:/ {mx=$2} /^messages_reaching_all:/ {n=$2}
    /^broker_cpu_ms_per_msg:/ {b=$2} /^bench_cpu_ms_per_msg:/ {i=$2} /^burst_deliveries_per_sec:/ {d=$2}
    END {printf "run %d: reach all p50 %.1f max %.1f ms (%d reached all), broker %.1f / imbench %.1f CPU ms per message, burst %.0f deliveries/s, load %s%s\n",
      run, p50, mx, n, b, i, d, load, (prof == "" ? "" : ", profile " prof)}' "$work/out")
  echo "$line"
  results+=("$line")
done
printf '%s\n' "${results[@]}" | awk '
  { for (i = 1; i <= NF; i++) { if ($i == "p50") p[NR] = $(i+1) + 0; if ($i == "max") m[NR] = $(i+1) + 0; if ($i == "broker") b[NR] = $(i+1) + 0 } }
  function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int((n + 1) / 2)] }
  END { printf "median of %d runs: reach all p50 %.1f ms, max %.1f ms, broker %.1f CPU ms per message\n", NR, med(p, NR), med(m, NR), med(b, NR) }'
