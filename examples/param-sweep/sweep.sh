#!/bin/sh
# A parameter sweep with files in and out: params.csv is staged read-only
# into every task (it crosses to each node once, by its sha256), each task
# runs point.sh for one row and writes result-<name>.txt, and the results
# come back into ./sweep-results/ as they finish. Extra arguments go to
# `gridnode run` (e.g. --data-dir DIR).
#
#   sh examples/param-sweep/sweep.sh [--data-dir DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if command -v gridnode >/dev/null 2>&1; then
  gridnode=gridnode
elif [ -x "$root/node_modules/.bin/node" ]; then
  gridnode="$root/node_modules/.bin/node $root/bin/gridnode.js"
else
  gridnode="node $root/bin/gridnode.js"
fi
out=${SWEEP_OUT:-sweep-results}
tail -n +2 "$here/params.csv" | cut -d, -f1 |
  $gridnode run "$@" --file "$here/params.csv" --file "$here/point.sh" \
    --output 'result-*.txt' --output-dir "$out" -- sh point.sh {} >/dev/null
cat "$out"/result-*.txt
