#!/usr/bin/env python3
"""Benchmark client: one message to every device listed in C2D_DEVICES_FILE (one id a line),
each send answered by the hub (no feedback); prints RATE <msg/s>.

  fanout_rate.py official   the official Python service SDK, azure-iot-hub 2.7, as its docs
                            allow: IoTHubRegistryManager.send_c2d_message in a loop (it has
                            no concurrent or asyncio send)
  fanout_rate.py c2d        c2d's ServiceClient.send_many (C2D_IN_FLIGHT sends at once, 64)
  fanout_rate.py register   registers every device of the file with c2d's asyncio registry
                            (C2D_IN_FLIGHT requests at once), for the benchmark's setup

env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_DEVICES_FILE, C2D_IN_FLIGHT.
Last stdout line: 'OK: ...' (exit 0) or 'FAIL: ...' (exit 1).
"""
import asyncio
import sys
import time

# beside this script: the environment, the closing line and the official SDK's CA patch
from hub_service import done, env, trust_ca


def official(cs, ca, ids):
    trust_ca(ca)
    from azure.iot.hub import IoTHubRegistryManager

    registry = IoTHubRegistryManager.from_connection_string(cs)
    registry.send_c2d_message(ids[0], "warm-up")
    started = time.monotonic()
    for device in ids:
        registry.send_c2d_message(device, "reboot", properties={"message_id": "cmd-1:" + device})
    return len(ids), time.monotonic() - started


def ours(cs, ca, ids, in_flight):
    import c2d

    with c2d.ServiceClient.connect(cs, trusted_ca_file=ca) as svc:
        svc.send(ids[0], "warm-up")
        started = time.monotonic()
        run = svc.send_many(iter(ids), c2d.Message("reboot", message_id="cmd-1"), in_flight=in_flight)
        failed = sum(1 for r in run if r.error is not None)
        elapsed = time.monotonic() - started
        if failed:
            done(False, "%d of %d devices failed: %r" % (failed, len(ids), run.summary))
        return run.summary.sent, elapsed


async def register(cs, ca, ids, in_flight):
    import c2d.aio

    svc = await c2d.aio.ServiceClient.connect(cs, trusted_ca_file=ca)
    for at in range(0, len(ids), in_flight):
        await asyncio.gather(*(svc.registry.create_device(d) for d in ids[at : at + in_flight]))
    await svc.close()


def main():
    mode = sys.argv[1]
    cs, ca = env("IOTHUB_SERVICE_CONNECTION_STRING"), env("IOTHUB_CA_FILE")
    with open(env("C2D_DEVICES_FILE")) as f:
        ids = [line.strip() for line in f if line.strip()]
    in_flight = int(env("C2D_IN_FLIGHT", "64"))
    if mode == "register":
        asyncio.run(register(cs, ca, ids, in_flight))
        done(True, "registered %d devices" % len(ids))
    sent, seconds = official(cs, ca, ids) if mode == "official" else ours(cs, ca, ids, in_flight)
    done(True, "RATE %.0f msg/s (%d devices in %.2f s)" % (sent / seconds, sent, seconds))


if __name__ == "__main__":
    main()
