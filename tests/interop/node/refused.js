#!/usr/bin/env node
'use strict';
// Interop client: the official Node service SDK, azure-iothub (Client), against a hub told to
// refuse sends (`c2d hub fault refuse-sends`). Without retries, each refusal reaches the
// application as the SDK's own error of IoT Hub's condition: 429001 as ThrottlingError
// (com.microsoft:device-container-throttled), 503001 as InternalServerError
// (amqp:internal-error), 403002 as IotHubQuotaExceededError (com.microsoft:quota-exceeded);
// the send after each goes through.
//
// env: IOTHUB_SERVICE_CONNECTION_STRING (required), IOTHUB_CA_FILE, C2D_DEVICE_ID (required),
//      C2D_BIN (the c2d command), C2D_HUB_DIR (the hub's data directory), TIMEOUT_S (60).
// Prints a JSON line per send on stderr; the last stdout line is OK or FAIL.
const { execFileSync } = require('child_process');
const common = require('./common');

common.trustCaFile();
const { setting, end, log } = common;
const iothub = require('azure-iothub');
const { Message, NoRetry } = require('azure-iot-common');

const serviceCs = setting('IOTHUB_SERVICE_CONNECTION_STRING') || end(false, 'IOTHUB_SERVICE_CONNECTION_STRING is required');
const deviceId = setting('C2D_DEVICE_ID') || end(false, 'C2D_DEVICE_ID is required');
const c2d = setting('C2D_BIN') || end(false, 'C2D_BIN is required');
common.deadline(() => 'the sends did not end');

const cases = [
  ['throttled', 'ThrottlingError'],
  ['busy', 'InternalServerError'],
  ['quota', 'IotHubQuotaExceededError'],
];

(async () => {
  const client = iothub.Client.fromConnectionString(serviceCs, iothub.Amqp);
  await client.open();
  client.setRetryPolicy(new NoRetry());
  const seen = [];
  for (const [error, expected] of cases) {
    execFileSync(c2d, ['hub', 'fault', 'refuse-sends', '--error', error, '--count', '1'], { stdio: 'ignore' });
    let caught = null;
    try {
      await client.send(deviceId, new Message(`refused-${error}`));
    } catch (e) {
      caught = e;
    }
    const name = caught && caught.constructor ? caught.constructor.name : null;
    log(JSON.stringify({ event: 'send', fault: error, error: name, message: caught ? caught.message : null }));
    if (name !== expected) end(false, `refuse-sends --error ${error}: ${name || 'no error'}, expected ${expected}`);
    await client.send(deviceId, new Message(`after-${error}`));
    seen.push(`${error} → ${name}`);
  }
  await client.close();
  end(true, seen.join(', '));
})().catch((e) => end(false, `${e.constructor.name}: ${e.message}`));
