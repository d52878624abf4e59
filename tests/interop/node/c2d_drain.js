#!/usr/bin/env node
'use strict';
// Benchmark client: c2d's Node.js DeviceClient draining the messages queued for a device,
// completing each and printing it as one JSON line, as drain.js does with the official SDK,
// so that scripts/compare.sh times both the same way.
//
// C2D_STYLE=await (the default): `for await` over messages(), awaiting each complete() before
// the next message; C2D_STYLE=events: the 'message' event, each complete() left to finish on
// its own while the next message is handled, as drain.js does with the official SDK.
//
// env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_COUNT, DEVICE_TRANSPORT (mqtt),
//      IOTHUB_MQTT_PORT / IOTHUB_AMQP_PORT / IOTHUB_WS_PORT (a hub on other ports), C2D_STYLE.
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
  const line = (msg) => JSON.stringify({ messageId: msg.messageId, body: msg.body.toString(), properties: msg.properties });
  if (setting('C2D_STYLE', 'await') === 'events') {
    await new Promise((resolve, reject) => {
      let completed = 0;
      device.on('error', reject);
      device.on('message', (msg) => {
        console.log(line(msg));
        msg.complete().then(() => ++completed === count && resolve(), reject);
      });
    });
  } else {
    let n = 0;
    for await (const msg of device.messages()) {
      console.log(line(msg));
      await msg.complete();
      if (++n === count) break;
    }
  }
  await device.close();
  end(true, `drained ${count}`);
}

main().catch((e) => end(false, `${e.code ?? e.name}: ${e.message}`));
