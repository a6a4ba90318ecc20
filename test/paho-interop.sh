#!/usr/bin/env bash
# Runs the Eclipse Paho interoperability client suites, unmodified, against imbroker started
# with examples/config/paho-interop.yaml (on a free loopback port, in memory): client_test.py
# (MQTT 3.1.1, 10 tests) and client_test5.py (MQTT 5, 27 tests), each RUNS times in a row
# (default 2), and prints the pass count of every run. Exit status 0 only if every test passed.
# Not part of `go test ./...`. Needs Go, python3 (standard library only) and a checkout of the
# suite, which is not in this repository:
#
#   git clone https://github.com/eclipse/paho.mqtt.testing ../paho.mqtt.testing
#   git -C ../paho.mqtt.testing checkout 9d7bb80      # the commit this script was checked with
#   test/paho-interop.sh ../paho.mqtt.testing
#
# KEEP=1 keeps the work directory (broker log, suite output).
set -euo pipefail
SUITE_COMMIT=9d7bb80
if [ $# -ne 1 ] || [ ! -f "$1/interoperability/client_test5.py" ]; then
  echo "usage: $0 <checkout of github.com/eclipse/paho.mqtt.testing at $SUITE_COMMIT>" >&2
  exit 2
fi
suite=$(cd "$1/interoperability" && pwd)
cd "$(dirname "$0")/.."
RUNS=${RUNS:-2}
if head=$(git -C "$suite" rev-parse --short=7 HEAD 2>/dev/null) && [ "$head" != "$SUITE_COMMIT" ]; then
  echo "note: the suite is at $head, this script was checked with $SUITE_COMMIT" >&2
fi

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

go build -o "$work/imbroker" ./cmd/imbroker
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The shipped file, with only the listener's port changed.
sed "s/^  tcp: \"127.0.0.1:1883\"/  tcp: \"127.0.0.1:$port\"/" examples/config/paho-interop.yaml >"$work/paho-interop.yaml"
grep -q "127.0.0.1:$port" "$work/paho-interop.yaml" || { echo "could not set the port" >&2; exit 1; }
"$work/imbroker" -config "$work/paho-interop.yaml" >"$work/imbroker.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$work/imbroker.log" >&2; exit 1; }

fail=0
for run in $(seq "$RUNS"); do
  for t in client_test.py client_test5.py; do
    out="$work/$t.$run.out"
    # The suite files run as they are, from their directory (they import its mqtt package), with
    # their own options --hostname/--port. Their __main__ block hands the whole command line on
    # to unittest.main(), which refuses those options (client_test.py on any port but 1883), so
    # unittest.main is given only the program name.
    (cd "$suite" && timeout 600 python3 -c '
import runpy, sys, unittest
sys.argv = sys.argv[1:]  # as if run as: python3 client_test.py --hostname … --port …
main = unittest.main
unittest.main = lambda *a, **k: main(*a, **dict(k, argv=sys.argv[:1]))
runpy.run_path(sys.argv[0], run_name="__main__")
' "$t" --hostname 127.0.0.1 --port "$port") >"$out" 2>&1 || true
    ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$out" | tail -1)
    bad=$(sed -n 's/^FAILED (\(.*\))$/\1/p' "$out" | tail -1 | tr -cs '0-9' ' ' | awk '{s=0; for(i=1;i<=NF;i++) s+=$i; print s}')
    ran=${ran:-0}; bad=${bad:-0}
    passed=$((ran - bad))
    echo "run $run: $t $passed/$ran passed"
    if [ "$ran" -eq 0 ] || [ "$bad" -ne 0 ]; then
      fail=1
      grep -E '^(FAIL|ERROR): test' "$out" | sed 's/^/    /' || true
    fi
  done
done
if [ "$fail" -ne 0 ]; then
  echo "some tests failed; run with KEEP=1 to keep the suite output and broker log" >&2
  exit 1
fi
echo "all passed"
