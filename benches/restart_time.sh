#!/bin/bash
# Used for the restart rows of BENCHMARKS.md (issue 21): needs curl and bc; DIR is a
# directory a `scale --dir DIR` run left (its data/ and operator token).
# restart.sh BIN DIR: starts `BIN serve` over DIR/data (a scale run's directory), prints the
# seconds until it listens and until /healthz says projections_current, the daemon's
# "Correlation graph built" line and its VmHWM, then stops it.
set -u
bin=$1; dir=$2; data=$dir/data; op=$(cat $dir/operator)
log=$(mktemp)
t0=$(date +%s.%N)
(cd $data && MUSUBI_LOG=${LOGF:-info} exec $bin --data-dir $data serve --listen 127.0.0.1:0 2>$log >/dev/null) &
pid=$!
url=""
while [ -z "$url" ]; do url=$(grep -o "listening on .*" $log | head -1 | sed 's/listening on //;s/ .*//'); sleep 0.02; done
t1=$(date +%s.%N)
until curl -s -H "Authorization: Bearer $op" $url/healthz | grep -q '"projections_current":true'; do sleep 0.05; done
t2=$(date +%s.%N)
dpid=$(pgrep -P $pid || echo $pid)
hwm=$(grep VmHWM /proc/$dpid/status 2>/dev/null || grep VmHWM /proc/$pid/status)
echo "listening $(echo "$t1 - $t0" | bc) s, projections current $(echo "$t2 - $t0" | bc) s, $hwm"
grep -i "graph built\|catching up\|phase\|snapshot" $log | sed "s/\x1b\[[0-9;]*m//g" | cut -c1-220 | tail -40
kill -TERM $pid; wait $pid 2>/dev/null
rm -f $log
