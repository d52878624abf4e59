#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/fuzz_targets/) at depth: each for at least --min seconds,
# and on until its coverage (libFuzzer's `cov:`, edges reached) has not grown for --flat
# seconds (at most --max). Each starts from the corpus kept in the repository
# (fuzz/corpus/<target>.tar.gz, what the last run left) and the seeds the regression test
# writes; at the end its corpus is minimized (libFuzzer -merge=1), capped at --cap bytes (the
# largest inputs dropped first) and written back to fuzz/corpus/<target>.tar.gz, so that the
# next run starts where this one ended. A finding's input is copied to fuzz/regressions/<target>/,
# where the test suite (hub/tests/fuzz_regressions.rs) runs it from then on: fix the fault,
# then commit the input. Prints, per target: seconds run, inputs tried, coverage and features
# at the end, when coverage last grew, corpus files and bytes, findings.
#
#   scripts/fuzz.sh [--min S] [--flat S] [--max S] [--cap BYTES] [--jobs N] [TARGET...]
#   (defaults: --min 600 --flat 300 --max 3600 --cap 1048576 --jobs 1, every target)
#
# --jobs runs that many targets at once (one core each). Needs cargo-fuzz (installed here if
# missing) and a nightly toolchain for libFuzzer's instrumentation; without one, the stable
# compiler is told to allow nightly flags.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
min=600 flat=300 max=3600 cap=1048576 jobs=1
targets=()
while [ $# -gt 0 ]; do
    case $1 in
        --min) min=$2; shift 2 ;;
        --flat) flat=$2; shift 2 ;;
        --max) max=$2; shift 2 ;;
        --cap) cap=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        -*) echo "usage: $0 [--min S] [--flat S] [--max S] [--cap BYTES] [--jobs N] [TARGET...]" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
export CARGO_TARGET_DIR=$root/target/fuzz
work=$root/target/fuzz/work
seeds=$root/target/fuzz/seeds
rm -rf "$seeds"
C2D_FUZZ_SEEDS=$seeds CARGO_TARGET_DIR=$root/target \
    cargo test -q -p c2d-hub --test fuzz_regressions >/dev/null

cd fuzz
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <("${fuzz[@]}" list)
"${fuzz[@]}" build -O
bin=$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release

# the last `cov: N` / `ft: N` libFuzzer printed to a log
last_of() { grep -o "$1: *[0-9]*" "$2" 2>/dev/null | tail -1 | grep -o '[0-9]*$' || echo 0; }

# runs one target to its end; its summary line goes to $work/<target>.summary
run_target() {
    local t=$1
    local out=$work/$t
    local kept=$root/fuzz/corpus/$t.tar.gz
    rm -rf "$out" && mkdir -p "$out/corpus" "$out/artifacts" "$out/kept"
    [ ! -f "$kept" ] || tar -xzf "$kept" -C "$out/kept"
    local log=$out/fuzz.log
    local started=$SECONDS
    "$bin/$t" "$out/corpus" "$out/kept" "$seeds/$t" \
        -max_total_time="$max" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/" >"$log" 2>&1 &
    local pid=$! cov=0 grew=$SECONDS now
    while kill -0 "$pid" 2>/dev/null; do
        sleep 5
        now=$(last_of cov "$log")
        if [ "$now" -gt "$cov" ]; then cov=$now grew=$SECONDS; fi
        if [ $((SECONDS - started)) -ge "$min" ] && [ $((SECONDS - grew)) -ge "$flat" ]; then
            kill -INT "$pid" 2>/dev/null || true
        fi
    done
    wait "$pid" 2>/dev/null || true
    # why it stopped: coverage flat for --flat seconds, --max reached, or a finding
    local secs=$((SECONDS - started)) last_growth=$((grew - started)) stopped=flat
    [ $((SECONDS - grew)) -ge "$flat" ] || stopped=max
    local runs ft findings=0
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(last_of cov "$log") ft=$(last_of ft "$log")
    for f in "$out/artifacts"/*; do
        [ -e "$f" ] || continue
        findings=$((findings + 1)) stopped=finding
        mkdir -p "$root/fuzz/regressions/$t"
        cp "$f" "$root/fuzz/regressions/$t/"
    done
    # minimize: the fewest inputs that reach the same coverage, then cap the bytes kept
    mkdir -p "$out/merged"
    "$bin/$t" -merge=1 "$out/merged" "$out/corpus" "$out/kept" "$seeds/$t" \
        -timeout=30 -rss_limit_mb=2048 >"$out/merge.log" 2>&1 || true
    if [ -n "$(ls -A "$out/merged")" ]; then
        local dropped=0
        while [ "$(du -sb "$out/merged" | cut -f1)" -gt "$cap" ]; do
            rm -f "$(ls -S "$out/merged" | head -1 | sed "s|^|$out/merged/|")"
            dropped=$((dropped + 1))
        done
        mkdir -p "$root/fuzz/corpus"
        # reproducible: the same inputs make the same archive
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C "$out/merged" . |
            gzip -n -9 >"$kept"
        [ "$dropped" -eq 0 ] || echo "fuzz: $t: $dropped largest inputs left out of the kept corpus (over $cap bytes)" >&2
    fi
    printf '%-18s %6s %12s %7s %7s %10s %8s %7s %9s %8s\n' "$t" "$secs" "${runs:-?}" "$cov" "$ft" \
        "$last_growth" "$stopped" "$(ls "$out/merged" | wc -l)" "$(du -sb "$out/merged" | cut -f1)" \
        "$findings" >"$out.summary"
    [ "$findings" -eq 0 ] || echo "fuzz: $t: $findings findings; see $log; the inputs are in fuzz/regressions/$t/" >&2
}

mkdir -p "$work"
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 2; done
    echo "fuzz: $t (at least ${min} s, until coverage is flat for ${flat} s, at most ${max} s)" >&2
    run_target "$t" &
done
wait

printf '%-18s %6s %12s %7s %7s %10s %8s %7s %9s %8s\n' target seconds inputs cov ft "last-grew" stopped files bytes findings
total=0
for t in "${targets[@]}"; do
    cat "$work/$t.summary"
    total=$((total + $(awk '{print $10}' "$work/$t.summary")))
done
echo "fuzz: ${#targets[@]} targets, each at least ${min} s and on until coverage was flat for ${flat} s (or ${max} s); $total findings"
[ "$total" -eq 0 ]
