#!/bin/bash
# The README's performance table (issue 15), on one machine in one sitting:
#   docs/bench-suite.sh BINARY OUTDIR [ROUNDS]
# runs every benchmark of the suite against SQLite and the local PostgreSQL
# (database "test", trust authentication), the noisy closed-loop reads
# ROUNDS times (default 3), interleaved, and writes one JSON line per run to
# OUTDIR/NAME.json (OUTDIR/log says when each ran and the load before it).
# Run it on a quiet machine from the repository's root (the audit log's
# library benchmarks are built from ./internal/audit); nothing else should run
# meanwhile. It takes about 12 minutes.
set -u
BIN=$1; O=$2; ROUNDS=${3:-3}
mkdir -p "$O"
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
run() {
  name=$1; shift
  echo "=== $name $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg): $*" | tee -a "$O/log"
  "$@" > "$O/$name.out" 2>&1
  grep '^{' "$O/$name.out" | tail -1 > "$O/$name.json"
}
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(free -g | awk '/Mem:/{print $2}') GiB; $($BIN version 2>/dev/null | head -1)" | tee "$O/log"
for i in $(seq "$ROUNDS"); do
  run "reads-sqlite-$i" "$BIN" bench reads --duration 20s --json
  run "reads-pg-$i" "$BIN" bench reads --db "$PG" --duration 20s --json
done
for i in 1 2; do
  run "rate1000-sqlite-$i" "$BIN" bench reads --rate 1000 --duration 20s --json
  run "rate1000-pg-$i" "$BIN" bench reads --db "$PG" --rate 1000 --duration 20s --json
done
for i in 1 2; do
  for n in 1 2 3; do run "servers-$n-$i" "$BIN" bench reads --db "$PG" --servers "$n" --duration 20s --json; done
done
run writes-sqlite "$BIN" bench writes --duration 15s --json
run writes-pg "$BIN" bench writes --db "$PG" --duration 15s --json
run mixed-sqlite "$BIN" bench mixed --duration 15s --json
run mixed-pg "$BIN" bench mixed --db "$PG" --duration 15s --json
run audit-sqlite "$BIN" bench audit --entries 1000000 --batch 10000 --json
run audit-pg "$BIN" bench audit --db "$PG" --entries 1000000 --batch 10000 --json
go test -c -o "$O/audit.test" ./internal/audit/
for db in sqlite pg; do
  env=""; [ "$db" = pg ] && env="MEDGUARD_TEST_POSTGRES=$PG"
  echo "=== appendbatch-$db $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$O/log"
  (cd /tmp && env $env "$O/audit.test" -test.run '^$' -test.bench 'AppendBatch' -test.benchtime 20x) > "$O/appendbatch-$db.out" 2>&1
  grep Benchmark "$O/appendbatch-$db.out" | tee -a "$O/log"
done
echo "=== done $(date -u +%T)" | tee -a "$O/log"
