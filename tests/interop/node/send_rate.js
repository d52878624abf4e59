#!/usr/bin/env node
'use strict';
// Benchmark client: the official Node service SDK (azure-iothub) sending C2D_COUNT messages
// to one device one after another (each accepted by the hub before the next; no feedback),
// as c2d_service.js does with C2D_RATE=1; prints RATE <msg/s>. With C2D_CONCURRENT=1 the sends
// go at once, with Promise.all over the one client (the SDK's Promise API allows it).
//
// env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_DEVICE_ID, C2D_COUNT,
//      C2D_CONCURRENT.
const common = require('./common');

common.trustCaFile();
const { setting, intSetting, end } = common;
const iothub = require('azure-iothub');
const { Message } = require('azure-iot-common');

const device = setting('C2D_DEVICE_ID');
const count = intSetting('C2D_COUNT', 1);
const client = iothub.Client.fromConnectionString(setting('IOTHUB_SERVICE_CONNECTION_STRING'), iothub.Amqp);

async function main() {
  await client.open();
  await client.send(device, new Message('warm-up'));
  const message = (i) => {
    const m = new Message(`reading ${i}`);
    m.properties.add('seq', String(i));
    return m;
  };
  const concurrent = setting('C2D_CONCURRENT') === '1';
  const started = process.hrtime.bigint();
  if (concurrent) {
    await Promise.all(Array.from({ length: count }, (_, i) => client.send(device, message(i))));
  } else {
    for (let i = 0; i < count; i++) await client.send(device, message(i));
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await client.close();
  const how = concurrent ? 'concurrent sends' : 'sends';
  end(true, `RATE ${(count / seconds).toFixed(0)} msg/s (${count} ${how} in ${seconds.toFixed(2)} s)`);
}

main().catch((e) => end(false, `${e.constructor.name}: ${e.message}`));
