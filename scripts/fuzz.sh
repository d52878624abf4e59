#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for a bounded time and prints, per target,
# the inputs tried and the findings. A finding's input is copied to fuzz/regressions/<target>/,
# where the test suite (hub/tests/fuzz_regressions.rs) runs it from then on: fix the fault, then
# commit the input.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 s, every target)
#
# Needs cargo-fuzz (installed here if missing) and a nightly toolchain for libFuzzer's
# instrumentation; without one, the stable compiler is told to allow nightly flags.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
shift || true

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
export CARGO_TARGET_DIR=$root/target/fuzz
corpus=$root/target/fuzz/corpus
artifacts=$root/target/fuzz/artifacts

# each corpus starts from the seeds the regression test writes
C2D_FUZZ_SEEDS=$corpus CARGO_TARGET_DIR=$root/target \
    cargo test -q -p c2d-hub --test fuzz_regressions >/dev/null

cd fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <("${fuzz[@]}" list)
"${fuzz[@]}" build -O

printf '%-18s %12s %10s %9s %s\n' target inputs "inputs/s" findings "corpus"
total_findings=0
for t in "${targets[@]}"; do
    # what an earlier run found is in fuzz/regressions already: count this run's only
    rm -rf "${artifacts:?}/$t"
    mkdir -p "$corpus/$t" "$artifacts/$t"
    log=$root/target/fuzz/$t.log
    "${fuzz[@]}" run -O "$t" "$corpus/$t" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$t/" >"$log" 2>&1 || true
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    findings=0
    for f in "$artifacts/$t"/*; do
        [ -e "$f" ] || continue
        findings=$((findings + 1))
        mkdir -p "$root/fuzz/regressions/$t"
        cp "$f" "$root/fuzz/regressions/$t/"
    done
    total_findings=$((total_findings + findings))
    printf '%-18s %12s %10s %9s %s\n' "$t" "${runs:-?}" "$(( ${runs:-0} / seconds ))" "$findings" \
        "$(ls "$corpus/$t" | wc -l) inputs"
    [ "$findings" -eq 0 ] || echo "  see $log; the inputs are in fuzz/regressions/$t/"
done
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, $total_findings findings"
[ "$total_findings" -eq 0 ]
