#!/usr/bin/env bash
# Starts the three example nodes on this machine (MQTT :1883 :2883 :3883,
# HTTP :1080 :2080 :3080, routes 127.0.0.1:6251-6253), data under
# ./data/cluster/node{1,2,3}. Run from the repository root:
#   examples/cluster/run.sh
# Ctrl-C stops all three. Logs: ./data/cluster/node{1,2,3}.log
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p data/cluster
bin=$(mktemp -d)/imbroker
go build -o "$bin" ./cmd/imbroker
pids=()
stop() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait
}
trap stop INT TERM EXIT
for i in 1 2 3; do
	"$bin" -config "examples/cluster/node$i.yaml" >"data/cluster/node$i.log" 2>&1 &
	pids+=("$!")
	echo "node$i: pid $!, log data/cluster/node$i.log"
done
wait -n "${pids[@]}" || true
echo "a node exited; stopping the others" >&2
