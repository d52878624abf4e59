#!/usr/bin/env bash
# What duplicate suppression costs a draining device: a release `c2d hub` (durability os, so
# that the disk is not what is measured), N messages queued for one device, then `c2d receive
# --json` drains them over MQTT without suppression, with it (memory), and with a duplicates
# file, twice each in turn (A B C A B C); scripts/drain-rate.py prints each drain's rate and
# the client's CPU time per message.
#
#     scripts/suppression-cost.sh [MESSAGES]     (20000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
cargo build --release --locked -q -p c2d-cli
c2d=$PWD/target/release/c2d
work=$(mktemp -d)
export C2D_HUB_DIR=$work/hub
"$c2d" hub --mqtt-port 0 --amqp-port 0 --https-port 0 --durability os --max-queue-depth $((n + 10)) \
    >"$work/hub.log" 2>&1 &
hub=$!
trap 'kill $hub 2>/dev/null; wait $hub 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$C2D_HUB_DIR/endpoints.json" ] && break; sleep 0.1; done
"$c2d" device create drain >/dev/null 2>&1
echo "suppression  msg/s  messages  client CPU µs/msg"
for round in 1 2; do
    for mode in off memory file; do
        "$c2d" send --device drain --count "$n" --message-id "r$round-$mode" x >/dev/null 2>&1
        case $mode in
            off) extra=() ;;
            memory) extra=(--suppress-duplicates) ;;
            file) extra=(--duplicates-file "$work/drain-$round.dups") ;;
        esac
        printf '%-12s %s\n' "$mode" "$(scripts/drain-rate.py "$c2d" receive --device drain --count "$n" \
            --json "${extra[@]}" 2>/dev/null)"
    done
done
