#!/usr/bin/env node
// A device application: receives its C2D messages and settles each by what it asks for:
// `command=reboot` is done (complete), an unknown command is refused (reject), and
// `command=update` is retried once later (abandon, then complete).
//
// env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_TRANSPORT
// (mqtt|mqtt_ws|amqp|amqp_ws, default amqp), C2D_PORT (optional), C2D_COUNT (messages to
// handle before exiting, default: run until stopped).
'use strict';
const c2d = require('c2d');

async function main() {
  const env = process.env;
  const count = env.C2D_COUNT ? Number(env.C2D_COUNT) : Infinity;
  const transport = env.C2D_TRANSPORT || c2d.Transport.Amqp;
  const device = await c2d.DeviceClient.connect(env.IOTHUB_DEVICE_CONNECTION_STRING, {
    transport,
    trustedCaFile: env.IOTHUB_CA_FILE || undefined,
    port: env.C2D_PORT ? Number(env.C2D_PORT) : undefined,
  });
  console.log(`device: connected over ${device.transport}`);
  let handled = 0;
  for await (const msg of device.messages()) {
    const command = msg.properties.command ?? '';
    const body = msg.body.toString();
    if (command === 'reboot') {
      console.log(`device: rebooting (${body})`);
      await msg.complete();
    } else if (command === 'update' && msg.deliveryCount === 0) {
      console.log(`device: busy, update later (${body})`);
      await msg.abandon();
      continue;
    } else if (command === 'update') {
      console.log(`device: updating (${body}), delivery ${msg.deliveryCount + 1}`);
      await msg.complete();
    } else {
      console.log(`device: unknown command ${JSON.stringify(command)}, refused`);
      await msg.reject();
    }
    if (++handled >= count) break;
  }
  await device.close();
}

main().catch((e) => {
  console.error(`device: ${e.code ?? e.name}: ${e.message}`);
  process.exitCode = 1;
});
