#!/usr/bin/env node
'use strict';
// Interop client: the official Node device SDK (azure-iot-device) over one of its
// transports (DEVICE_TRANSPORT: mqtt, mqttws, amqp, amqpws, http). Receives the messages of
// run C2D_RUN_ID (a numbered one, with a `seq` property, must have the body
// `c2d-<run>-<seq>`; one without is told by its message id) and settles each as its
// 'action' property says:
//   complete      complete it
//   reject        reject it (dead-letter: Rejected feedback)
//   abandon       abandon every delivery (DeliveryCountExceeded after C2D_MAX_DELIVERY)
//   abandon-once  abandon the first delivery, complete the redelivery
// Over MQTT, reject and abandon must fail with NotImplementedError (checked), and messages
// are completed by the SDK itself.
// env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_COUNT (1), C2D_RUN_ID,
//      C2D_MAX_DELIVERY (10), DEVICE_TRANSPORT, TIMEOUT_S (60), C2D_CERT_FILE and
//      C2D_KEY_FILE (an X.509 device: setOptions({ cert, key }), with `x509=true` in the
//      connection string).
// Prints READY on stderr once connected; last stdout line OK: ... or FAIL: ...
const fs = require('fs');
const { setting: env, end: finish } = require('./common');
const { Client } = require('azure-iot-device');

const transportName = env('DEVICE_TRANSPORT', 'mqtt');
const transports = {
  mqtt: () => require('azure-iot-device-mqtt').Mqtt,
  mqttws: () => require('azure-iot-device-mqtt').MqttWs,
  amqp: () => require('azure-iot-device-amqp').Amqp,
  amqpws: () => require('azure-iot-device-amqp').AmqpWs,
  http: () => require('azure-iot-device-http').Http,
};
if (!transports[transportName]) finish(false, `unknown DEVICE_TRANSPORT ${transportName}`);
const isMqtt = transportName.startsWith('mqtt');
const count = parseInt(env('C2D_COUNT', '1'), 10);
const run = env('C2D_RUN_ID');
const maxDelivery = parseInt(env('C2D_MAX_DELIVERY', '10'), 10);
const state = new Map(); // seq -> {deliveries, settled}

setTimeout(() => finish(false, `timeout (transport ${transportName}; ${JSON.stringify([...state])})`), parseInt(env('TIMEOUT_S', '60'), 10) * 1000).unref();

// The HTTP transport keeps application properties under their header names
// ('iothub-app-run'); the others under their own names.
function prop(msg, key) {
  const v = msg.properties.getValue(key);
  return v === undefined ? msg.properties.getValue(`iothub-app-${key}`) : v;
}

function settle(client, msg, how) {
  return new Promise((resolve) => {
    try {
      client[how](msg, (err) => resolve(err || null));
    } catch (e) {
      resolve(e);
    }
  });
}

function allDone() {
  if (state.size < count) return false;
  for (const s of state.values()) if (!s.settled) return false;
  return true;
}

async function onMessage(client, msg) {
  if (run && prop(msg, 'run') !== run) return; // another run's leftovers
  // a message the sender did not number (a fan-out's) is told by its id and not checked
  const seq = prop(msg, 'seq');
  const key = seq === undefined ? `id:${msg.messageId}` : seq;
  const action = prop(msg, 'action') || 'complete';
  const body = msg.data ? Buffer.from(msg.data).toString() : '';
  const s = state.get(key) || { deliveries: 0, settled: false };
  state.set(key, s);
  s.deliveries += 1;
  console.log(JSON.stringify({ event: 'received', transport: transportName, seq, action, messageId: msg.messageId, body, delivery: s.deliveries, lockToken: msg.lockToken || null }));
  if (seq !== undefined && body !== `c2d-${prop(msg, 'run')}-${seq}`) finish(false, `seq ${seq}: body ${JSON.stringify(body)}`);
  let how = 'complete';
  if (action === 'reject') how = 'reject';
  if (action === 'abandon') how = 'abandon';
  if (action === 'abandon-once' && s.deliveries === 1) how = 'abandon';
  if (isMqtt && how !== 'complete') {
    const err = await settle(client, msg, how);
    if (!err || err.constructor.name !== 'NotImplementedError') finish(false, `MQTT ${how} should throw NotImplementedError, got ${err}`);
    how = 'complete';
  }
  const err = await settle(client, msg, how);
  // rhea 1.0.24 (under azure-iot-device-amqp) writes the first two dispositions of one tick as
  // one range with the first one's outcome (write_dispositions compares outcomes only from
  // the third delivery on): a complete and an abandon settled together both become
  // complete, at IoT Hub as here. Let each settlement go out before the next is made.
  if (!isMqtt) await new Promise((resolve) => setImmediate(resolve));
  if (err) finish(false, `seq ${seq}: ${how} failed: ${err.constructor.name}: ${err.message}`);
  if (how === 'complete' || how === 'reject' || (action === 'abandon' && s.deliveries >= maxDelivery)) s.settled = true;
  if (allDone()) {
    setTimeout(() => client.close(() => finish(true, `device (${transportName}) settled ${count} messages: ${[...state].map(([k, v]) => `${k}x${v.deliveries}`).join(' ')}`)), 300);
  }
}

const client = Client.fromConnectionString(env('IOTHUB_DEVICE_CONNECTION_STRING'), transports[transportName]());
const ca = env('IOTHUB_CA_FILE');
const options = ca ? { ca: fs.readFileSync(ca, 'utf8') } : {};
if (env('C2D_CERT_FILE')) {
  options.cert = fs.readFileSync(env('C2D_CERT_FILE'), 'utf8');
  options.key = fs.readFileSync(env('C2D_KEY_FILE'), 'utf8');
}
// The HTTP transport calls back from setOptions only when a receive policy is given; poll
// every second (the SDK's default interval) and drain the queue on each poll.
if (transportName === 'http') options.http = { receivePolicy: { interval: 1, drain: true } };
client.setOptions(options, (err) => {
  if (err) finish(false, `setOptions: ${err.message}`);
  client.on('error', (e) => finish(false, `client error: ${e.message}`));
  let previous = Promise.resolve(); // one message at a time: see the rhea note in onMessage
  client.on('message', (msg) => {
    previous = previous.then(() => onMessage(client, msg));
  });
  client.open((e) => {
    if (e) finish(false, `open failed: ${e.constructor.name}: ${e.message}`);
    console.error('READY');
  });
});
