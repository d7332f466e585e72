#!/bin/bash
# The record-read, write and mixed figures of the README (issue 15), on a quiet machine:
# docs/bench-reads.sh NEW_BINARY OLD_BINARY OUTDIR runs each benchmark of the new build, and the
# reads of an older one back to back, against SQLite and the local PostgreSQL (database "test").
A=$1; B=$2; O=$3; mkdir -p $O
PG='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
run() { name=$1; shift; echo "=== $name $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" | tee -a $O/log; "$@" > $O/$name.out 2>&1; grep -E '^  all|^ +[0-9,]+ +[0-9.]+ (ms|µs)|per read|per op|peak RSS' $O/$name.out | head -6 | tee -a $O/log; }
for i in 1 2; do
  run sqlite-before-$i $B bench reads --duration 20s --json
  run sqlite-after-$i $A bench reads --duration 20s --json
  run pg-before-$i $B bench reads --db "$PG" --duration 20s --json
  run pg-after-$i $A bench reads --db "$PG" --duration 20s --json
done
run sqlite-rate1000 $A bench reads --rate 1000 --duration 20s --json
run pg-rate1000 $A bench reads --db "$PG" --rate 1000 --duration 20s --json
run pg-before-rate1000 $B bench reads --db "$PG" --rate 1000 --duration 20s --json
for n in 1 2 3; do run servers-$n $A bench reads --db "$PG" --servers $n --duration 20s --json; done
run writes-sqlite $A bench writes --duration 15s --json
run writes-pg $A bench writes --db "$PG" --duration 15s --json
run mixed-sqlite $A bench mixed --duration 15s --json
run mixed-pg $A bench mixed --db "$PG" --duration 15s --json
echo "=== done $(date -u +%T)" | tee -a $O/log
