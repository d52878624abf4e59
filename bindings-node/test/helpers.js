// What every test shares: a real c2d hub started by the test, in this process, on free
// ports, with a manual clock and small limits so that every rule can be reached quickly.
'use strict';
const assert = require('node:assert/strict');
const c2d = require('..');

/** The device transports, each run through the whole scenario list. */
const TRANSPORTS = Object.values(c2d.Transport);
/** How often the HTTPS devices of the tests poll, in ms (a local hub does not throttle). */
const POLL_MS = 50;
/** How long a test waits for something that should come at once, in ms. */
const WAIT = 15_000;

function startHub(options = {}) {
  return c2d.LocalHub.start({
    manualClock: true,
    feedbackIntervalMs: 0,
    maxDeliveryCount: 3,
    maxQueueDepth: 5,
    maxMessageSize: 1000,
    ...options,
  });
}

/** Whether the transport can reject and abandon: every one but MQTT's. */
const settlesAll = (t) => t !== c2d.Transport.Mqtt && t !== c2d.Transport.MqttWs;
const fastRetry = () => c2d.RetryPolicy.fixed(100, { maxRetries: 50 });

async function received(device) {
  const m = await device.receive({ timeoutMs: WAIT });
  assert.ok(m, `no message within ${WAIT} ms`);
  return m;
}

module.exports = { TRANSPORTS, POLL_MS, WAIT, startHub, settlesAll, fastRetry, received };
