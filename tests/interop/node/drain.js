#!/usr/bin/env node
'use strict';
// Benchmark client: the official Node device SDK (azure-iot-device + azure-iot-device-mqtt)
// draining the messages queued for a device over MQTT (8883, which the SDK cannot change),
// completing each and printing it as one JSON line, as c2d_drain.js does with c2d's
// DeviceClient, so that scripts/compare.sh times both the same way.
//
// env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_COUNT, TIMEOUT_S (600).
const fs = require('fs');
const { setting, intSetting, end } = require('./common');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const count = intSetting('C2D_COUNT', 1);
setTimeout(() => end(false, `timeout: ${received} of ${count}`), intSetting('TIMEOUT_S', 600) * 1000).unref();
let received = 0;
const client = Client.fromConnectionString(setting('IOTHUB_DEVICE_CONNECTION_STRING'), Mqtt);
const ca = setting('IOTHUB_CA_FILE');
if (ca) client.setOptions({ ca: fs.readFileSync(ca, 'utf8') });
client.on('message', (msg) => {
  const properties = {};
  for (const p of msg.properties.propertyList) properties[p.key] = p.value;
  console.log(JSON.stringify({ messageId: msg.messageId, body: msg.data.toString(), properties }));
  client.complete(msg, (err) => {
    if (err) end(false, `complete: ${err.message}`);
    if (++received === count) client.close(() => end(true, `drained ${count}`));
  });
});
client.open((err) => {
  if (err) end(false, `open: ${err.message}`);
});
