#!/usr/bin/env bash
# Side-by-side MQTT benchmark on loopback: mosquitto, stock mochi and imbroker
# run the same imbench scenarios in one go; prints one table with ratios
# against mosquitto, then imbroker's IM scenarios. Bounded in count and time.
#
#   test/compare.sh            # defaults: 10 publishers x 10000 messages
#   MSGS=2000 test/compare.sh  # quicker
#   LIVE10K=1 test/compare.sh  # also one live room with 10,000 online members (~1 more minute)
#   IMBROKER_BIN=/tmp/old/imbroker test/compare.sh  # run a prebuilt imbroker (before/after runs)
#   PORT_OFFSET=100 test/compare.sh  # other ports (18931, 18941, 18951), beside another run
#   IDLE_ONLY=1 test/compare.sh      # only the idle connections scenario (memory per connection)
#
# cpu/1k is the broker process's CPU seconds (user+system, from /proc/PID/stat)
# per 1,000 delivered messages during the scenario; store MB is the size of
# imbroker's data dir after it (the store grows through the run: the IM
# scenarios come after the pubsub ones, which store nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
MSGS=${MSGS:-10000}
PUBS=${PUBS:-10}
CONNS=${CONNS:-15000}
off=${PORT_OFFSET:-0}
pim=$((18831 + off)) pmo=$((18841 + off)) pmq=$((18851 + off))
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v mosquitto >/dev/null; then
  echo "installing mosquitto from Debian's packages" >&2
  (apt-get update -qq && apt-get install -y -qq mosquitto) >/dev/null
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ -n "${IMBROKER_BIN:-}" ]; then cp "$IMBROKER_BIN" "$work/imbroker"; else go build -o "$work/imbroker" ./cmd/imbroker; fi
go build -o "$work/imbench" ./cmd/imbench
go build -o "$work/stockmochi" ./test/stockmochi

key=compare-secret-key-0123456789abcdef
cat > "$work/imbroker.yaml" <<YAML
app:
  secret_key: "$key"
mqtt:
  tcp: "127.0.0.1:$pim"
  ws: ""
  max_clients: 0                  # what the open-file limit holds (ulimit -Hn is 20000 on some machines)
  acl:
    - { permission: allow, action: all, topic: "bench/#", who: authenticated }
http:
  address: ""
storage:
  dir: "$work/data"
groups:
  rate_limit: 1000000
log:
  level: error
YAML

mosquitto -p $pmq >"$work/mosquitto.log" 2>&1 & pids+=($!); mq=$!
"$work/stockmochi" -addr 127.0.0.1:$pmo >"$work/mochi.log" 2>&1 & pids+=($!); sm=$!
"$work/imbroker" -config "$work/imbroker.yaml" >"$work/imbroker.log" 2>&1 & pids+=($!); ib=$!
for port in $pmq $pmo $pim; do
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
for p in $mq $sm $ib; do
  kill -0 "$p" 2>/dev/null || { echo "a broker exited at start (port in use? try PORT_OFFSET):" >&2; tail -n 3 "$work"/*.log >&2; exit 1; }
done

tck=$(getconf CLK_TCK)
cputicks() { awk '{print $14+$15}' "/proc/$1/stat"; } # utime+stime of a process
bench() { # name port key pid args... -> imbench's JSON plus cpu_s and store_bytes
  local name=$1 port=$2 k=$3 pid=$4; shift 4
  local t0 t1 out
  t0=$(cputicks "$pid")
  out=$("$work/imbench" -json -broker "tcp://127.0.0.1:$port" -key "$k" -pid "$pid" "$@")
  t1=$(cputicks "$pid")
  local size=0
  if [ "$pid" = "$ib" ]; then size=$(du -sb "$work/data" | cut -f1); fi
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["cpu_s"]=(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4]); r["store_bytes"]=int(sys.argv[5]); print(json.dumps(r))' "$out" "$t0" "$t1" "$tck" "$size"
}
row() { # label json
  python3 -c 'import json,sys; r=json.loads(sys.argv[2]); d=r["delivered"]; print("%-34s %10.0f %8d %8.2f %8.2f %8.2f %8.3f %8s" % (sys.argv[1], r["delivered_per_sec"], r["lost"], r["P50"], r["P99"], r["Max"], 1000*r["cpu_s"]/d if d else 0, "%.1f" % (r["store_bytes"]/1e6) if r["store_bytes"] else "-"))' "$1" "$2"
}

printf '%-34s %10s %8s %8s %8s %8s %8s %8s\n' scenario "delivered/s" lost p50ms p99ms maxms cpu/1k "store MB"
declare -A base
[ -n "${IDLE_ONLY:-}" ] || for sc in "p2p-qos1:-qos 1" "p2p-qos0:-qos 0" "fanout-qos1:-qos 1 -fanout -messages 1000"; do
  name=${sc%%:*}; args=${sc#*:}
  for b in "mosquitto $pmq - $mq" "mochi $pmo - $sm" "imbroker $pim $key $ib"; do
    set -- $b; k=$3; [ "$k" = "-" ] && k=""
    out=$(bench "$1" "$2" "$k" "$4" -scenario pubsub -clients "$PUBS" -messages "$MSGS" $args)
    rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["delivered_per_sec"])' "$out")
    [ "$1" = mosquitto ] && base[$name]=$rate
    if [ "$name" = p2p-qos1 ] && [ "$1" = imbroker ]; then ibraw=$rate; fi
    row "$name $1 (x$(python3 -c "print(round($rate/${base[$name]},2))"))" "$out"
  done
done
for b in "mosquitto $pmq - $mq" "mochi $pmo - $sm" "imbroker $pim $key $ib"; do
  set -- $b; k=$3; [ "$k" = "-" ] && k=""
  out=$(bench "$1" "$2" "$k" "$4" -scenario connections -clients "$CONNS" -rate 5000 -hold 2s)
  python3 -c 'import json,sys; r=json.loads(sys.argv[2]); e=r.get("extra",{}); print("connections %-12s %6d conns %8.0f conn/s %8.2f kB/conn, %8.2f after the 2 s hold %6.2f cpu s" % (sys.argv[1], r["delivered"], e.get("connect_per_sec",0), e.get("broker_kb_per_conn",0), e.get("broker_kb_per_conn_held",0), r["cpu_s"]))' "$1" "$out"
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "${IDLE_ONLY:-}" ] || exit 0
echo
echo "imbroker IM scenarios"
out=$(bench imbroker $pim $key $ib -scenario c2c -clients 10 -messages "$MSGS")
row "c2c (10 pairs x $MSGS)" "$out"
python3 -c 'import json,sys; print("  c2c = %.0f %% of imbroker raw p2p QoS 1 (%.0f msg/s)" % (100*json.loads(sys.argv[1])["delivered_per_sec"]/float(sys.argv[2]), float(sys.argv[2])))' "$out" "$ibraw"
half=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["delivered_per_sec"]/2))' "$out")
row "c2c at half of that ($half msg/s, 5 s)" "$(bench imbroker $pim $key $ib -scenario c2c -clients 10 -messages $((half / 2)) -msg-rate "$half")"
out=$(bench imbroker $pim $key $ib -scenario group -clients 1000 -messages 20)
row "group (1000 online members)" "$out"
python3 -c 'import json,sys; e=json.loads(sys.argv[1])["extra"]; print("  reach all: p50 %.1f ms, max %.1f ms" % (e.get("reach_all_ms_p50",0), e.get("reach_all_ms_max",0)))' "$out"
if [ -n "${LIVE10K:-}" ]; then
  out=$(bench imbroker $pim $key $ib -scenario group -clients 10000 -messages 10 -timeout 5m)
  row "group (10000 online members)" "$out"
  python3 -c 'import json,sys; e=json.loads(sys.argv[1])["extra"]; print("  reach all: p50 %.1f ms, max %.1f ms" % (e.get("reach_all_ms_p50",0), e.get("reach_all_ms_max",0)))' "$out"
fi
out=$(bench imbroker $pim $key $ib -scenario catchup -messages 10000)
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); d=r["delivered"]; print("catchup 10000 messages: replayed %d in %.2f s, %.3f cpu s/1k, store %.1f MB" % (d, r["extra"].get("replay_seconds",0), 1000*r["cpu_s"]/d if d else 0, r["store_bytes"]/1e6))' "$out"
