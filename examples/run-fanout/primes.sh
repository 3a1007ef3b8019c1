#!/bin/sh
# Fans a shell command out over the mesh, GNU parallel style: `factor` runs
# once per input line, on whichever node is free, and the output comes back
# in input order. Extra arguments go to `gridnode run` (e.g. --data-dir DIR).
#
#   sh examples/run-fanout/primes.sh [--data-dir DIR]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
# The installed `gridnode` command, or this checkout's (with the Node 24 that npm install brings).
if command -v gridnode >/dev/null 2>&1; then
  gridnode=gridnode
elif [ -x "$root/node_modules/.bin/node" ]; then
  gridnode="$root/node_modules/.bin/node $root/bin/gridnode.js"
else
  gridnode="node $root/bin/gridnode.js"
fi

seq 1000000000001 1000000000020 | $gridnode run "$@" -- factor {}
