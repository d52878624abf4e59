#!/usr/bin/env node
'use strict';
// Interop client: the official Node service SDK, azure-iothub (Client), against a hub that
// throttles as IoT Hub does. First without retries: of C2D_COUNT sends made together, the
// ones over the hub's backlog fail with the SDK's own ThrottlingError (the AMQP rejection
// com.microsoft:device-container-throttled mapped by the SDK). Then with the SDK's default
// retry policy: the same sends all succeed, the SDK having retried the throttled ones by
// itself.
//
// env: IOTHUB_SERVICE_CONNECTION_STRING (required), IOTHUB_CA_FILE, C2D_DEVICE_ID (required),
//      C2D_COUNT (3), TIMEOUT_S (60).
// Prints a JSON line per send on stderr; the last stdout line is OK or FAIL.
const common = require('./common');

common.trustCaFile();
const { setting, intSetting, end, log } = common;
const iothub = require('azure-iothub');
// the SDK's errors, from the azure-iot-common it depends on (a copy of its own, maybe)
const { Message, NoRetry, ExponentialBackOffWithJitter } = require('azure-iot-common');
const isThrottling = (e) => e && e.constructor && e.constructor.name === 'ThrottlingError';

const serviceCs = setting('IOTHUB_SERVICE_CONNECTION_STRING') || end(false, 'IOTHUB_SERVICE_CONNECTION_STRING is required');
const deviceId = setting('C2D_DEVICE_ID') || end(false, 'C2D_DEVICE_ID is required');
const count = intSetting('C2D_COUNT', 3);
common.deadline(() => 'the sends did not end');

function sendAll(client, round) {
  return Promise.allSettled(
    Array.from({ length: count }, (_, i) => {
      const m = new Message(`throttled-${round}-${i}`);
      m.messageId = `throttled-${round}-${i}`;
      return client.send(deviceId, m);
    }),
  );
}

(async () => {
  const client = iothub.Client.fromConnectionString(serviceCs, iothub.Amqp);
  await client.open();
  client.setRetryPolicy(new NoRetry());
  const first = await sendAll(client, 'no-retry');
  let throttled = 0;
  for (const r of first) {
    const error = r.status === 'rejected' ? r.reason : null;
    log(JSON.stringify({ event: 'send', round: 'no-retry', ok: !error, error: error ? error.constructor.name : null }));
    if (isThrottling(error)) throttled++;
    else if (error) end(false, `a send failed with ${error.constructor.name}: ${error.message}`);
  }
  if (throttled === 0) end(false, `none of ${count} sends made together was throttled`);
  client.setRetryPolicy(new ExponentialBackOffWithJitter());
  const second = await sendAll(client, 'retried');
  for (const r of second) {
    log(JSON.stringify({ event: 'send', round: 'retried', ok: r.status === 'fulfilled', error: r.status === 'rejected' ? r.reason.constructor.name : null }));
    if (r.status === 'rejected') end(false, `a send failed despite the retries: ${r.reason.constructor.name}`);
  }
  await client.close();
  end(true, `${throttled} of ${count} sends were ThrottlingErrors without retries; all ${count} went through with the SDK's retries`);
})().catch((e) => end(false, `${e.constructor.name}: ${e.message}`));
