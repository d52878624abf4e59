#!/usr/bin/env node
'use strict';
// Benchmark client: c2d's Node.js DeviceClient draining the messages queued for a device,
// completing each and printing it as one JSON line, as drain.js does with the official SDK,
// so that scripts/compare.sh times both the same way.
//
// env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_COUNT, DEVICE_TRANSPORT (mqtt),
//      IOTHUB_MQTT_PORT / IOTHUB_AMQP_PORT / IOTHUB_WS_PORT (a hub on other ports).
const c2d = require('c2d');
const { setting, intSetting, end } = require('./common');

async function main() {
  const count = intSetting('C2D_COUNT', 1);
  const port = (name) => intSetting(name, 0) || undefined;
  const device = await c2d.DeviceClient.connect(setting('IOTHUB_DEVICE_CONNECTION_STRING'), {
    transport: setting('DEVICE_TRANSPORT', 'mqtt'),
    trustedCaFile: setting('IOTHUB_CA_FILE'),
    mqttPort: port('IOTHUB_MQTT_PORT'),
    amqpPort: port('IOTHUB_AMQP_PORT'),
    httpsPort: port('IOTHUB_WS_PORT'),
  });
  let n = 0;
  for await (const msg of device.messages()) {
    console.log(JSON.stringify({ messageId: msg.messageId, body: msg.body.toString(), properties: msg.properties }));
    await msg.complete();
    if (++n === count) break;
  }
  await device.close();
  end(true, `drained ${count}`);
}

main().catch((e) => end(false, `${e.code ?? e.name}: ${e.message}`));
