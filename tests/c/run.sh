#!/usr/bin/env bash
# The C tests: builds libc2d (debug), checks it exports only c2d_* symbols, then builds the
# test programs as plain C11 with -Wall -Wextra -Werror and runs each three ways: as is, under
# valgrind (no leaks, no errors) and with AddressSanitizer + UBSan.
# Prints a closing "c: N passed, N failed" line.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --locked -q -p c2d-ffi || exit 1
lib=$root/target/debug
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
result() { # name status
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}

others=$(nm -D --defined-only "$lib/libc2d.so" | awk '{print $3}' | grep -v '^c2d_' || true)
exported=$(nm -D --defined-only "$lib/libc2d.so" | awk '{print $3}' | grep -c '^c2d_')
if [ -n "$others" ]; then echo "libc2d.so exports more than c2d_*:"; echo "$others" | head; result symbols 1
else echo "libc2d.so exports $exported symbols, all c2d_*"; result symbols 0; fi

# without the hub (C2D_NO_HUB, as `make install HUB=0` sets), the header still serves the
# device and service API and hides c2d_hub_*
if gcc -std=c11 -Wall -Wextra -Werror -fsyntax-only -DC2D_NO_HUB -I"$root/include" examples/c/device.c examples/c/backend.c &&
    ! printf '#include "c2d.h"\nint main(void) { c2d_hub *h = 0; return c2d_hub_start(0, &h); }\n' |
        gcc -std=c11 -Werror -fsyntax-only -DC2D_NO_HUB -I"$root/include" -x c - 2>/dev/null; then
    result "header without the hub" 0
else result "header without the hub" 1; fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -I"$root/include" -DC2D_CRATE_VERSION="\"$version\"")
libs=(-L"$lib" -Wl,-rpath,"$lib" -lc2d -lpthread)
# --fair-sched: valgrind runs one thread at a time, and its default lock lets a thread that
# spins (tokio's workers do, briefly) starve the others for minutes.
valgrind_flags=(--quiet --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --suppressions="$root/tests/c/valgrind.supp")
for test in errors misuse scenarios; do
    gcc "${cflags[@]}" "tests/c/$test.c" -o "$out/$test" "${libs[@]}" || { result "$test (build)" 1; continue; }
    gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer "tests/c/$test.c" \
        -o "$out/$test-asan" "${libs[@]}" || { result "$test (asan build)" 1; continue; }
    "$out/$test" >"$out/$test.log" 2>&1; s=$?
    [ "$s" = 0 ] || cat "$out/$test.log"; result "$test" "$s"
    valgrind "${valgrind_flags[@]}" "$out/$test" >"$out/$test-valgrind.log" 2>&1; s=$?
    [ "$s" = 0 ] || tail -60 "$out/$test-valgrind.log"; result "$test (valgrind)" "$s"
    ASAN_OPTIONS=detect_leaks=1 "$out/$test-asan" >"$out/$test-asan.log" 2>&1; s=$?
    [ "$s" = 0 ] || tail -60 "$out/$test-asan.log"; result "$test (asan)" "$s"
done
echo "c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
