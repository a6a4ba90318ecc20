#!/usr/bin/env bash
# One node against a three-node cluster on this machine, same imbench
# scenarios, alternated (one, three, one, three, ...) so that the load other
# processes put on the machine falls on both; then the write stall of a
# failover: the owner of the cluster's log killed with SIGKILL under paced
# c2c load. Loopback only; bounded in count and time (docs/benchmarks.md).
#
#   test/cluster-bench.sh                  # ROUNDS=2 pairs of runs, then FAILOVERS=3 kills
#   ROUNDS=1 FAILOVERS=0 test/cluster-bench.sh
#   ROUNDS=0 FAILOVERS=5 test/cluster-bench.sh   # the failover only
#   IMBROKER_BIN=/tmp/old/imbroker test/cluster-bench.sh   # a prebuilt imbroker
#   PORT_OFFSET=100 test/cluster-bench.sh  # other ports, beside another run
#   SCENARIOS="c2c" test/cluster-bench.sh  # some of: c2c paced room conns
#   KEEP=1 test/cluster-bench.sh           # keep the work dir (node logs)
#
# Scenarios: c2c (PAIRS pairs x MSGS durable one-to-one messages; on the
# cluster every receiver is on another node than its sender), paced (the
# same at PACED_RATE msg/s for 5 s: latency below saturation), room (a live
# room of MEMBERS members spread over the nodes, ROOM_MSGS messages; reach
# is "every member got it"), connections (CONNS idle connections spread over
# the nodes, memory summed over the nodes). The failover: imbench c2c at
# FAILOVER_RATE msg/s for FAILOVER_SECS s from the two nodes that do not own
# the log; the owner is killed KILL_AT s in; "stall" is the kill to the end
# of the longest gap between two PUBACKs of one connection (imbench's
# ack_gap_end_unix), "gap" that longest gap, "refused" the sends refused
# (an MQTT 3.1.1 client gets a PUBACK and the reason on its rpc topic: a
# refused send ends a gap too, so with refusals the stall is a lower bound).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
FAILOVERS=${FAILOVERS:-3}
PAIRS=${PAIRS:-10}
MSGS=${MSGS:-5000}
SCENARIOS=${SCENARIOS:-c2c paced room conns}
PACED_RATE=${PACED_RATE:-2000}
MEMBERS=${MEMBERS:-300}
ROOM_MSGS=${ROOM_MSGS:-10}
CONNS=${CONNS:-3000}
FAILOVER_RATE=${FAILOVER_RATE:-400}
FAILOVER_SECS=${FAILOVER_SECS:-25}
KILL_AT=${KILL_AT:-8}
off=${PORT_OFFSET:-0}
mqtt0=$((19831 + off)) http0=$((19841 + off)) route0=$((19851 + off))
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ -n "${IMBROKER_BIN:-}" ]; then cp "$IMBROKER_BIN" "$work/imbroker"; else go build -o "$work/imbroker" ./cmd/imbroker; fi
go build -o "$work/imbench" ./cmd/imbench
key=cluster-bench-secret-key-0123456789

config() { # name index cluster(0|1) -> config file
  local name=$1 i=$2 cl=$3 f="$work/$1.yaml"
  cat >"$f" <<YAML
app:
  secret_key: "$key"
mqtt:
  tcp: "127.0.0.1:$((mqtt0 + i))"
  ws: ""
  max_clients: 0
http:
  address: "127.0.0.1:$((http0 + i))"
storage:
  dir: "$work/data/$name"
groups:
  rate_limit: 1000000
log:
  level: ${LOGLEVEL:-warn}
YAML
  if [ "$cl" = 1 ]; then
    cat >>"$f" <<YAML
cluster:
  enabled: true
  name: $name
  listen: 127.0.0.1:$((route0 + i))
  routes:
    - nats-route://127.0.0.1:$route0
    - nats-route://127.0.0.1:$((route0 + 1))
    - nats-route://127.0.0.1:$((route0 + 2))
YAML
  fi
  echo "$f"
}

nodepid=() # pid of node i of the running setup
start() { # 1 | 3: fresh data, start, wait until every node is ready
  local n=$1 cl=0
  [ "$n" = 3 ] && cl=1
  rm -rf "$work/data"
  nodepid=()
  for i in $(seq 0 $((n - 1))); do
    "$work/imbroker" -config "$(config "node$((i + 1))" "$i" $cl)" >"$work/node$((i + 1)).log" 2>&1 &
    pids+=($!)
    nodepid+=($!)
  done
  for i in $(seq 0 $((n - 1))); do
    for _ in $(seq 600); do
      curl -sf "http://127.0.0.1:$((http0 + i))/readyz" >/dev/null 2>&1 && continue 2
      kill -0 "${nodepid[$i]}" 2>/dev/null || break
      sleep 0.1
    done
    echo "node$((i + 1)) not ready:" >&2
    tail -n 5 "$work/node$((i + 1)).log" >&2
    exit 1
  done
}

stop() {
  for p in "${nodepid[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${nodepid[@]}"; do wait "$p" 2>/dev/null || true; done
}

brokers() { # nodes... -> imbench -broker list
  local out="" i
  for i in "$@"; do out+="${out:+,}tcp://127.0.0.1:$((mqtt0 + i))"; done
  echo "$out"
}

pidlist() { local IFS=,; echo "${nodepid[*]}"; }

bench() { # nodes(e.g. "0 1 2") args... -> imbench's JSON
  local nodes=$1; shift
  # shellcheck disable=SC2086
  "$work/imbench" -json -broker "$(brokers $nodes)" -key "$key" -pid "$(pidlist)" "$@" || true
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

row() { # label json
  python3 - "$1" "$2" "$(loadavg)" <<'PY'
import json, sys
label, out, load = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = json.loads(out)
except ValueError:
    print("%-28s failed: %s" % (label, out[:200])); sys.exit()
e = r.get("extra") or {}
if r["scenario"] == "c2c":
    print("%-28s %8.0f msg/s  lost %d refused %d  p50 %.2f p99 %.2f max %.2f ms  load %s" % (
        label, r["delivered_per_sec"], r["lost"], e.get("refused", 0) + r["errors"], r["P50"], r["P99"], r["Max"], load))
elif r["scenario"] == "group":
    print("%-28s reach-all p50 %.1f max %.1f ms (%d/%d msgs reached all)  burst %.0f deliveries/s  broker cpu %.1f ms/msg  load %s" % (
        label, e.get("reach_all_ms_p50", 0), e.get("reach_all_ms_max", 0), e.get("messages_reaching_all", 0),
        r["sent"] // 2, e.get("burst_deliveries_per_sec", 0), e.get("broker_cpu_ms_per_msg", 0), load))
else:
    print("%-28s %d conns  %.0f conn/s  %.2f kB/conn (all nodes)  errors %d  load %s" % (
        label, r["delivered"], e.get("connect_per_sec", 0), e.get("broker_kb_per_conn", 0), r["errors"], load))
PY
}

for round in $(seq "$ROUNDS"); do
  for n in ${SETUPS:-1 3}; do
    nodes="0"
    [ "$n" = 3 ] && nodes="0 1 2"
    start "$n"
    case " $SCENARIOS " in *" c2c "*)
      row "r$round $n node(s) c2c" "$(bench "$nodes" -scenario c2c -clients "$PAIRS" -messages "$MSGS")" ;;
    esac
    case " $SCENARIOS " in *" paced "*)
      row "r$round $n node(s) c2c $PACED_RATE/s" "$(bench "$nodes" -scenario c2c -clients "$PAIRS" -messages $((PACED_RATE * 5 / PAIRS)) -msg-rate "$PACED_RATE")" ;;
    esac
    case " $SCENARIOS " in *" room "*)
      row "r$round $n node(s) live room" "$(bench "$nodes" -scenario group -clients "$MEMBERS" -messages "$ROOM_MSGS" -timeout 3m)" ;;
    esac
    case " $SCENARIOS " in *" conns "*)
      row "r$round $n node(s) connections" "$(bench "$nodes" -scenario connections -clients "$CONNS" -rate 2000 -hold 2s)" ;;
    esac
    stop
  done
done

owner() { # the node index whose /metrics says it owns the log
  local i
  for _ in $(seq 300); do
    for i in 0 1 2; do
      if curl -sf "http://127.0.0.1:$((http0 + i))/metrics" 2>/dev/null | grep -q '^imbroker_cluster_owner 1'; then
        echo "$i"
        return
      fi
    done
    sleep 0.1
  done
  echo "no owner" >&2
  exit 1
}

for k in $(seq "$FAILOVERS"); do
  start 3
  o=$(owner)
  others=""
  for i in 0 1 2; do [ "$i" != "$o" ] && others+=" $i"; done
  out="$work/failover.json"
  # shellcheck disable=SC2086
  "$work/imbench" -json -broker "$(brokers $others)" -key "$key" -scenario c2c -clients "$PAIRS" \
    -messages $((FAILOVER_RATE * FAILOVER_SECS / PAIRS)) -msg-rate "$FAILOVER_RATE" -timeout 3m >"$out" || true &
  bp=$!
  sleep "$KILL_AT"
  killed=$(date +%s.%N)
  kill -9 "${nodepid[$o]}"
  wait "$bp" || true
  python3 - "$(cat "$out")" "$killed" "node$((o + 1))" "$(loadavg)" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); e = r.get("extra") or {}
end = e.get("ack_gap_end_unix", 0)
print("failover: killed owner %s; stall %.2f s (kill to the end of the longest gap between one connection's PUBACKs, %.2f s); sent %d, refused %d, errors %d, lost %d  load %s" % (
    sys.argv[3], end - float(sys.argv[2]), e.get("ack_gap_max_ms", 0) / 1000, r["sent"], e.get("refused", 0), r["errors"], r["lost"], sys.argv[4]))
PY
  stop
  for i in 1 2 3; do mv "$work/node$i.log" "$work/failover$k-node$i.log"; done
done
