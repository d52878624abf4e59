#!/usr/bin/env python3
"""Times a client that prints one JSON line per message it handles (scripts/compare.sh's
drains): runs COMMAND, and from the first such line to the last measures the rate and the
CPU time (user + system, every thread, from /proc/PID/stat) the client process spent per
message. Prints "<messages per second> <messages> <CPU microseconds per message>".

    scripts/drain-rate.py COMMAND [ARG...]

COMMAND must be the client process itself (exec it through `env`, not a shell), so that its
pid is the one measured. Lines that are not JSON objects are ignored; a command that fails
or prints fewer than two messages fails this script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); these start at field 3
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    first = last = None
    n = 0
    for line in child.stdout:
        if not line.startswith("{"):
            continue
        try:
            sample = (time.monotonic(), cpu_seconds(child.pid))
        except FileNotFoundError:  # the client exited after its last line
            break
        first = first or sample
        last = sample
        n += 1
    status = child.wait()
    if status != 0:
        print(f"drain-rate: {sys.argv[1:]} exited with {status}", file=sys.stderr)
        return 1
    if n < 2 or first is None or last is None:
        print("drain-rate: fewer than 2 messages arrived", file=sys.stderr)
        return 1
    seconds, cpu = last[0] - first[0], last[1] - first[1]
    print("%.0f %d %.1f" % ((n - 1) / seconds, n, cpu * 1e6 / (n - 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
