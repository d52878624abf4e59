#!/usr/bin/env node
'use strict';
// Benchmark client: one message to every device listed in C2D_DEVICES_FILE (one id a line),
// each send answered by the hub (no feedback); prints RATE <msg/s>.
//   C2D_MODE=official: the official Node service SDK, azure-iothub, as its docs allow:
//     client.send per device, Promise.all over batches of C2D_IN_FLIGHT sends
//   C2D_MODE=c2d: c2d's ServiceClient.sendMany with inFlight C2D_IN_FLIGHT (NODE_PATH to
//     the c2d package)
// env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_DEVICES_FILE, C2D_IN_FLIGHT (64).
const fs = require('fs');
const common = require('./common');

const mode = common.setting('C2D_MODE', 'official');
if (mode === 'official') common.trustCaFile();
const { setting, intSetting, end } = common;
const ids = fs.readFileSync(setting('C2D_DEVICES_FILE'), 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
const inFlight = intSetting('C2D_IN_FLIGHT', 64);
const cs = setting('IOTHUB_SERVICE_CONNECTION_STRING');

async function official() {
  const iothub = require('azure-iothub');
  const { Message } = require('azure-iot-common');
  const client = iothub.Client.fromConnectionString(cs, iothub.Amqp);
  await client.open();
  await client.send(ids[0], new Message('warm-up'));
  const started = process.hrtime.bigint();
  for (let at = 0; at < ids.length; at += inFlight) {
    await Promise.all(
      ids.slice(at, at + inFlight).map((d) => {
        const m = new Message('reboot');
        m.messageId = `cmd-1:${d}`;
        return client.send(d, m);
      }),
    );
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await client.close();
  return [ids.length, seconds];
}

async function ours() {
  const c2d = require('c2d');
  const svc = await c2d.ServiceClient.connect(cs, { trustedCaFile: setting('IOTHUB_CA_FILE') });
  await svc.send(ids[0], 'warm-up');
  const started = process.hrtime.bigint();
  const run = svc.sendMany(ids, new c2d.Message('reboot', { messageId: 'cmd-1' }), { inFlight });
  let failed = 0;
  for await (const r of run) if (r.error) failed++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await svc.close();
  if (failed) end(false, `${failed} of ${ids.length} devices failed: ${JSON.stringify(run.summary)}`);
  return [run.summary.sent, seconds];
}

(mode === 'official' ? official() : ours())
  .then(([sent, seconds]) => end(true, `RATE ${(sent / seconds).toFixed(0)} msg/s (${sent} devices in ${seconds.toFixed(2)} s)`))
  .catch((e) => end(false, `${e.constructor.name}: ${e.message}`));
