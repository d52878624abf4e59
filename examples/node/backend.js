#!/usr/bin/env node
// A back-end application: sends three commands to a device with ack=full and prints each
// command's own outcome as the hub reports it; exits non-zero unless every outcome is the
// expected one (reboot: Success, update: Success after a retry, dance: Rejected).
//
// env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_DEVICE_ID,
// C2D_AMQP_PORT and C2D_HTTPS_PORT (optional).
'use strict';
const c2d = require('c2d');

const EXPECTED = [
  ['reboot', c2d.FeedbackStatus.Success],
  ['update', c2d.FeedbackStatus.Success],
  ['dance', c2d.FeedbackStatus.Rejected],
];

const port = (name) => (process.env[name] ? Number(process.env[name]) : undefined);

async function main() {
  const device = process.env.C2D_DEVICE_ID;
  const service = await c2d.ServiceClient.connect(process.env.IOTHUB_SERVICE_CONNECTION_STRING, {
    trustedCaFile: process.env.IOTHUB_CA_FILE || undefined,
    amqpPort: port('C2D_AMQP_PORT'),
    httpsPort: port('C2D_HTTPS_PORT'),
  });
  try {
    const sent = [];
    for (const [command, expected] of EXPECTED) {
      const message = new c2d.Message(`${command} now`, {
        ack: c2d.Ack.Full, ttlMs: 600_000, properties: { command },
      });
      const s = await service.send(device, message);
      console.log(`backend: sent ${command} as ${s.messageId}`);
      sent.push([command, expected, s]);
    }
    // every outcome is awaited at once: each resolves when the hub reports it
    const records = await Promise.all(sent.map(([, , s]) => s.outcome({ timeoutMs: 60_000 })));
    let wrong = 0;
    records.forEach((record, i) => {
      const [command, expected] = sent[i];
      console.log(`backend: ${command}: ${record.status}`);
      if (record.status !== expected) {
        console.error(`backend: ${command}: expected ${expected}`);
        wrong += 1;
      }
    });
    process.exitCode = wrong ? 1 : 0;
  } finally {
    await service.close();
  }
}

main().catch((e) => {
  console.error(`backend: ${e.code ?? e.name}: ${e.message}`);
  process.exitCode = 1;
});
