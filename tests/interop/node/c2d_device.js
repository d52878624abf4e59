#!/usr/bin/env node
'use strict';
// Interop client: c2d's Node.js DeviceClient (the `c2d` package) receiving what an official
// service SDK sends, over any transport (DEVICE_TRANSPORT: mqtt, mqtt_ws, amqp, amqp_ws,
// https; HTTPS polls every 200 ms).
//
// Receives the messages of run C2D_RUN_ID, checks each against the sender's conventions (body
// `c2d-<run>-<seq>`, message id `<run>-<seq>` or its `expect-mid` property, C2D_PROPERTIES),
// and settles each as its `action` property says: complete, reject, abandon (every delivery)
// or abandon-once (the first delivery; then complete). Over MQTT, reject and abandon must
// fail with UnsupportedError, and the message is completed when it comes again.
//
// env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_COUNT (1), C2D_RUN_ID,
//      C2D_PROPERTIES (JSON), C2D_MAX_DELIVERY (10), DEVICE_TRANSPORT (mqtt), TIMEOUT_S (60).
// Prints READY on stderr once connected; the last stdout line is 'OK: ...' or 'FAIL: ...'.
const c2d = require('c2d');
const { setting, intSetting, end } = require('./common');

async function main() {
  const transport = setting('DEVICE_TRANSPORT', 'mqtt');
  const count = intSetting('C2D_COUNT', 1);
  const run = setting('C2D_RUN_ID');
  const maxDelivery = intSetting('C2D_MAX_DELIVERY', 10);
  const extra = JSON.parse(setting('C2D_PROPERTIES', '{}'));
  const deadline = Date.now() + intSetting('TIMEOUT_S', 60) * 1000;
  const mqtt = transport.startsWith('mqtt');
  const device = await c2d.DeviceClient.connect(setting('IOTHUB_DEVICE_CONNECTION_STRING'), {
    transport,
    trustedCaFile: setting('IOTHUB_CA_FILE'),
    retry: c2d.RetryPolicy.fixed(200, { maxRetries: 20 }),
    pollIntervalMs: 200,
  });
  console.error('READY');
  const deliveries = new Map();
  const done = new Map(); // seq -> deliveries, once settled for good
  while (done.size < count) {
    const msg = await device.receive({ timeoutMs: Math.max(deadline - Date.now(), 0) });
    if (!msg) return end(false, `timeout: settled ${done.size} of ${count} over ${transport}`);
    const props = msg.properties;
    if (run && props.run !== run) {
      console.log(JSON.stringify({ event: 'other-run', properties: props }));
      await msg.complete();
      continue;
    }
    const seq = props.seq ?? '';
    const body = msg.body.toString();
    const wantId = props['expect-mid'] ?? `${props.run}-${seq}`;
    if (body !== `c2d-${props.run}-${seq}` || msg.messageId !== wantId) {
      return end(false, `seq ${seq}: body ${JSON.stringify(body)}, message id ${msg.messageId}`);
    }
    for (const [key, value] of Object.entries(extra)) {
      if (props[key] !== String(value)) return end(false, `seq ${seq}: property ${key}=${props[key]}, expected ${value}`);
    }
    deliveries.set(seq, (deliveries.get(seq) ?? 0) + 1);
    const action = props.action ?? 'complete';
    const how = action === 'abandon-once' ? (deliveries.get(seq) === 1 ? 'abandon' : 'complete') : action;
    console.log(JSON.stringify({ event: 'received', seq, messageId: msg.messageId, deliveryCount: msg.deliveryCount, action: how, properties: props }));
    if (mqtt && how !== 'complete') {
      try {
        await msg[how]();
        return end(false, `MQTT ${how} should fail with UnsupportedError`);
      } catch (e) {
        if (!(e instanceof c2d.UnsupportedError)) throw e;
        continue; // given up, not acknowledged: it comes again when its lock ends
      }
    }
    await msg[how]();
    if (how === 'complete' || how === 'reject' || deliveries.get(seq) >= maxDelivery) done.set(seq, deliveries.get(seq));
  }
  await device.close();
  const settled = [...done].sort().map(([k, v]) => `${k}x${v}`).join(' ');
  end(true, `c2d Node device (${transport}) settled ${count} messages: ${settled}`);
}

main().catch((e) => end(false, `${e.code ?? e.name}: ${e.message}`));
