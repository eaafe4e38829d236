#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) from its seed corpus and exits non-zero
# when any target finds a crash, a timeout (>10 s per input) or an out-of-memory.
#
#   fuzz/run-all.sh 60            # every target, 60 s each
#   fuzz/run-all.sh 300 stix_pattern extract
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). The seeds
# are assembled from the fixture tree by assemble-seeds.sh (see seeds.list) into
# fuzz/seed-corpus/<target>, which libFuzzer only reads. The working corpus grows in
# fuzz/corpus/<target> (ignored by git); findings land in fuzz/artifacts/<target>/. One summary line per target goes to fuzz/artifacts/summary.txt.
set -uo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")"
unset CARGO_TARGET_DIR

# Pure-Rust parsers: no sanitizer (nothing unsafe to instrument, 2-3x the executions), but
# debug assertions and overflow checks on, so an arithmetic overflow is a finding too.
flags=(--sanitizer none --debug-assertions)

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build "${flags[@]}" || exit 2
./assemble-seeds.sh "${targets[@]}" || exit 2
mkdir -p artifacts
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/run.log"
    echo "== $t: ${seconds}s"
    cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" "seed-corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    line="$t seconds=$seconds executions=${execs:-?} rc=$rc"
    echo "$line" | tee -a artifacts/summary.txt
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        grep -E 'panicked|ERROR: libFuzzer|Test unit written|SUMMARY' "$log" | head -5
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "findings in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s clean"
