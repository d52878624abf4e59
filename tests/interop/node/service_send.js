#!/usr/bin/env node
'use strict';
// Interop client: the official Node service SDK, azure-iothub 1.16 (Client), over AMQP (TLS,
// 5671) or AMQP over WebSockets (443). Sends C2D_COUNT messages to one device, each with the
// message id '<run>-<seq>' (or a UUID, which the SDK puts on the wire as an AMQP uuid), the
// body 'c2d-<run>-<seq>', the ack C2D_ACK and the properties run, seq, action and
// C2D_PROPERTIES; then reads the feedback receiver until every message that asked for
// feedback has its record, and checks each record's status against what its action implies.
//
// env: IOTHUB_SERVICE_CONNECTION_STRING (required), IOTHUB_CA_FILE, C2D_DEVICE_ID (else the
//      DeviceId of IOTHUB_DEVICE_CONNECTION_STRING), C2D_COUNT (1), C2D_RUN_ID (random),
//      C2D_ACK (full | positive | negative | none), C2D_ACTIONS (what the device should do with
//      message 1, 2, …, cycled: complete | reject | abandon | abandon-once), C2D_EXPECT_FEEDBACK
//      (statuses, cycled, instead of what the actions imply), C2D_PROPERTIES (JSON),
//      C2D_UUID_IDS (1: UUID message ids), C2D_WAIT_FEEDBACK (0: do not wait),
//      SERVICE_TRANSPORT (amqp | amqpws), TIMEOUT_S (60).
// Prints a JSON line per message sent and per feedback record; the last line is OK or FAIL.
const crypto = require('crypto');
const common = require('./common');

common.trustCaFile();
const { setting, intSetting, end, log } = common;
const iothub = require('azure-iothub');
const { Message } = require('azure-iot-common');

const transports = { amqp: iothub.Amqp, amqpws: iothub.AmqpWs };
const transportName = setting('SERVICE_TRANSPORT', 'amqp');
if (!transports[transportName]) end(false, `SERVICE_TRANSPORT is amqp or amqpws, not ${transportName}`);
const serviceCs = setting('IOTHUB_SERVICE_CONNECTION_STRING') || end(false, 'IOTHUB_SERVICE_CONNECTION_STRING is required');
const deviceId = setting('C2D_DEVICE_ID', common.connectionStringField(setting('IOTHUB_DEVICE_CONNECTION_STRING'), 'DeviceId'));
if (!deviceId) end(false, 'set C2D_DEVICE_ID or IOTHUB_DEVICE_CONNECTION_STRING');
const count = intSetting('C2D_COUNT', 1);
const run = setting('C2D_RUN_ID', crypto.randomBytes(4).toString('hex'));
const ack = setting('C2D_ACK', 'full');
const list = (name) => (setting(name) ? setting(name).split(',').map((s) => s.trim()) : null);
const actions = list('C2D_ACTIONS');
const expectedStatuses = list('C2D_EXPECT_FEEDBACK');
const waitForFeedback = setting('C2D_WAIT_FEEDBACK', '1') !== '0' && ack !== 'none';
const uuidIds = setting('C2D_UUID_IDS') === '1';
const extra = common.extraProperties();

const statusOfAction = { complete: 'Success', 'abandon-once': 'Success', reject: 'Rejected', abandon: 'DeliveryCountExceeded' };
const asksFor = { full: () => true, positive: (s) => s === 'Success', negative: (s) => s !== 'Success', none: () => false };
if (!asksFor[ack]) end(false, `C2D_ACK is full, positive, negative or none, not ${ack}`);

// Every message of the run is planned before the first send: the feedback queue is the
// hub's, shared by every run, and a record can arrive before its send's answer.
const planned = new Map(); // message id -> { seq, action, expected, wantsFeedback }
for (let seq = 1; seq <= count; seq++) {
  const action = actions ? actions[(seq - 1) % actions.length] : null;
  const expected = expectedStatuses ? expectedStatuses[(seq - 1) % expectedStatuses.length] : statusOfAction[action || 'complete'];
  const id = uuidIds ? crypto.randomUUID() : `${run}-${seq}`;
  planned.set(id, { seq, action, expected, wantsFeedback: asksFor[ack](expected) });
}
const records = new Map(); // message id -> feedback record
let sent = 0;
common.deadline(() => `run ${run}: sent ${sent}/${count}, feedback for ${records.size} of ${[...planned.values()].filter((p) => p.wantsFeedback).length}`);

function messageFor(id, plan) {
  const message = new Message(`c2d-${run}-${plan.seq}`);
  message.messageId = id;
  message.ack = ack;
  message.properties.add('run', run);
  message.properties.add('seq', String(plan.seq));
  if (uuidIds) message.properties.add('expect-mid', id);
  if (plan.action) message.properties.add('action', plan.action);
  for (const [key, value] of Object.entries(extra)) message.properties.add(key, value);
  return message;
}

function feedbackComplete() {
  for (const [id, plan] of planned) if (plan.wantsFeedback && !records.has(id)) return false;
  return true;
}

function verdict() {
  const wrong = [];
  for (const [id, plan] of planned) {
    const record = records.get(id);
    if (!plan.wantsFeedback || !record) continue;
    if (record.statusCode !== plan.expected) wrong.push(`${id}: ${record.statusCode}, expected ${plan.expected}`);
    if (record.deviceId !== deviceId) wrong.push(`${id}: feedback for device ${record.deviceId}`);
  }
  if (wrong.length) return [false, `feedback: ${wrong.join('; ')}`];
  const feedback = waitForFeedback ? `; ${records.size} feedback records as expected` : '; feedback not awaited';
  return [true, `sent ${count} C2D messages to ${deviceId} over ${transportName} (run ${run}, ack ${ack})${feedback}`];
}

async function main() {
  const client = iothub.Client.fromConnectionString(serviceCs, transports[transportName]);
  await client.open();
  log(`service client open over ${transportName}, run ${run}`);
  let finish = null;
  const allFeedback = new Promise((resolve) => { finish = resolve; });
  if (waitForFeedback) {
    const { result: receiver } = await client.getFeedbackReceiver();
    receiver.on('errorReceived', (e) => end(false, `feedback receiver: ${e.message}`));
    receiver.on('message', (batch) => {
      const text = batch.data === undefined ? '' : Buffer.from(batch.data).toString('utf8');
      let batchRecords;
      try {
        batchRecords = JSON.parse(text);
      } catch (e) {
        end(false, `a feedback message is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
      }
      if (!Array.isArray(batchRecords)) end(false, `a feedback message is not a JSON array: ${text.slice(0, 200)}`);
      for (const record of batchRecords) {
        const ours = planned.has(record.originalMessageId);
        console.log(JSON.stringify({ event: ours ? 'feedback' : 'other-run-feedback', record }));
        if (ours) records.set(record.originalMessageId, record);
      }
      receiver.complete(batch, () => { if (feedbackComplete()) finish(); });
    });
  }
  for (const [id, plan] of planned) {
    try {
      await client.send(deviceId, messageFor(id, plan));
    } catch (e) {
      end(false, `send #${plan.seq} failed: ${e.constructor.name}: ${e.message}`);
    }
    sent += 1;
    console.log(JSON.stringify({ event: 'sent', seq: plan.seq, messageId: id, action: plan.action, ack, expectedFeedback: plan.wantsFeedback ? plan.expected : null }));
  }
  if (waitForFeedback && !feedbackComplete()) await allFeedback;
  const [ok, text] = verdict();
  await client.close().catch((e) => log(`close: ${e.message}`));
  end(ok, text);
}

main().catch((e) => end(false, `${e.constructor.name}: ${e.message}`));
