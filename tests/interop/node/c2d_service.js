#!/usr/bin/env node
'use strict';
// Interop client: c2d's Node.js ServiceClient (the `c2d` package) sending to a device that an
// official device SDK runs: C2D_COUNT messages with the message id `<run>-<seq>`, the body
// `c2d-<run>-<seq>`, ack=full and the properties run, seq and C2D_PROPERTIES; then each
// message's own outcome, which must be Success.
//
// env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_DEVICE_ID, C2D_COUNT (1),
//      C2D_RUN_ID, C2D_PROPERTIES (JSON), SERVICE_TRANSPORT (amqp | amqp_ws), TIMEOUT_S (60),
//      IOTHUB_AMQP_PORT / IOTHUB_WS_PORT (a hub on other ports), C2D_RATE (1: the benchmark,
//      C2D_COUNT sends one after another without feedback; prints RATE <msg/s>),
//      C2D_CONCURRENT (1, with C2D_RATE=1: the C2D_COUNT sends at once, with Promise.all).
// The last stdout line is 'OK: ...' or 'FAIL: ...'.
const c2d = require('c2d');
const { setting, intSetting, end } = require('./common');

async function main() {
  const device = setting('C2D_DEVICE_ID');
  const run = setting('C2D_RUN_ID', 'node-service');
  const count = intSetting('C2D_COUNT', 1);
  const timeoutMs = intSetting('TIMEOUT_S', 60) * 1000;
  const extra = JSON.parse(setting('C2D_PROPERTIES', '{}'));
  const service = await c2d.ServiceClient.connect(setting('IOTHUB_SERVICE_CONNECTION_STRING'), {
    transport: setting('SERVICE_TRANSPORT', 'amqp'),
    trustedCaFile: setting('IOTHUB_CA_FILE'),
    amqpPort: intSetting('IOTHUB_AMQP_PORT', 0) || undefined,
    httpsPort: intSetting('IOTHUB_WS_PORT', 0) || undefined,
  });
  if (setting('C2D_RATE') === '1') {
    // the benchmark: sends one after another, each answered by the hub, no feedback
    await service.send(device, 'warm-up');
    const message = (i) => new c2d.Message(`reading ${i}`, { properties: { seq: String(i) } });
    const concurrent = setting('C2D_CONCURRENT') === '1';
    const started = process.hrtime.bigint();
    if (concurrent) {
      await Promise.all(Array.from({ length: count }, (_, i) => service.send(device, message(i))));
    } else {
      for (let i = 0; i < count; i++) await service.send(device, message(i));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await service.close();
    const how = concurrent ? 'concurrent sends' : 'sends';
    return end(true, `RATE ${(count / seconds).toFixed(0)} msg/s (${count} ${how} in ${seconds.toFixed(2)} s)`);
  }
  const sent = [];
  for (let seq = 1; seq <= count; seq++) {
    const s = await service.send(device, new c2d.Message(`c2d-${run}-${seq}`, {
      ack: c2d.Ack.Full, messageId: `${run}-${seq}`, properties: { run, seq: String(seq), ...extra },
    }));
    console.log(JSON.stringify({ event: 'sent', messageId: s.messageId }));
    sent.push(s);
  }
  const wrong = [];
  for (const s of sent) {
    const record = await s.outcome({ timeoutMs });
    console.log(JSON.stringify({ event: 'feedback', messageId: record.originalMessageId, status: record.status }));
    if (record.status !== c2d.FeedbackStatus.Success || record.deviceId !== device) {
      wrong.push(`${s.messageId}: ${record.status} from ${record.deviceId}`);
    }
  }
  await service.close();
  if (wrong.length) return end(false, wrong.join('; '));
  end(true, `c2d Node service sent ${count} messages to ${device}; each outcome Success`);
}

main().catch((e) => end(false, `${e.code ?? e.name}: ${e.message}`));
