#!/bin/sh
# One task of the sweep: the row of params.csv named $1 (staged into the
# task's working directory by --file), iterated through the logistic map
# x <- r x (1 - x); writes result-$1.txt with the values it settles on.
set -eu
awk -F, -v name="$1" '
  NR > 1 && $1 == name {
    r = $2; x = $3
    for (i = 0; i < 1000; i++) x = r * x * (1 - x)
    n = 0
    for (i = 0; i < 64; i++) { x = r * x * (1 - x); v = sprintf("%.4f", x); if (!(v in seen)) { seen[v] = 1; n++ } }
    printf "%s r=%s settles on %s value%s\n", name, r, (n >= 64 ? "many" : n), (n == 1 ? "" : "s")
    found = 1
  }
  END { if (!found) { print "no row " name > "/dev/stderr"; exit 1 } }
' params.csv > "result-$1.txt"
