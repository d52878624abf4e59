// Cancellation the way Node does it: every call that waits takes `{ signal }`. An abort
// rejects at once with the signal's reason, leaves the client usable and takes nothing: a
// receive aborted as its message arrives leaves that message to the next receive; an aborted
// outcome() leaves the record to a later call. A signal aborted already rejects before any I/O.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const c2d = require('..');
const { startHub, received, WAIT } = require('./helpers');

const isAbortError = (e) => e instanceof DOMException && e.name === 'AbortError';

test('a hundred receives each aborted racing one send lose nothing', async () => {
  const rounds = 100;
  for (const transport of [c2d.Transport.Mqtt, c2d.Transport.Amqp]) {
    const hub = await startHub({ manualClock: false, maxQueueDepth: rounds, lockTimeoutMs: 60_000 });
    try {
      const cs = await hub.createDevice('dev1');
      const device = await c2d.DeviceClient.connect(cs, { ...hub.deviceOptions(), transport });
      const service = await c2d.ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
      const seen = new Map();
      const count = (m) => seen.set(m.body.toString(), (seen.get(m.body.toString()) ?? 0) + 1);
      let aborted = 0;
      for (let i = 0; i < rounds; i++) {
        const controller = new AbortController();
        const receiving = device.receive({ signal: controller.signal });
        // the hub delivers a message before it answers its send (it answers once the message
        // is on disk or completed): aborted at once after the send went out, or after the
        // message had time to arrive; both sides of the race
        const sending = service.send('dev1', `m${i}`);
        if (i % 5) await new Promise((resolve) => setTimeout(resolve, i % 5));
        controller.abort();
        try {
          const m = await receiving;
          count(m);
          await m.complete();
        } catch (e) {
          assert.ok(isAbortError(e), `${transport}: ${e}`);
          aborted++;
        }
        await sending;
      }
      while ([...seen.values()].reduce((a, b) => a + b, 0) < rounds) {
        const m = await received(device);
        count(m);
        await m.complete();
      }
      assert.ok(aborted > 0, `${transport}: no receive was aborted`);
      assert.deepEqual(seen, new Map(Array.from({ length: rounds }, (_, i) => [`m${i}`, 1])), `${transport}: each once`);
      assert.equal(await device.receive({ timeoutMs: 300 }), null, `${transport}: a message came twice`);
      await device.close();
      await service.close();
    } finally {
      await hub.stop();
    }
  }
});

test('an aborted signal rejects every call before any I/O, with its reason', async () => {
  const hub = await startHub();
  try {
    const cs = await hub.createDevice('dev1');
    const device = await c2d.DeviceClient.connect(cs, hub.deviceOptions());
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    const reason = new Error('not now');
    const signal = AbortSignal.abort(reason);
    const calls = {
      'DeviceClient.connect': () => c2d.DeviceClient.connect(cs, { ...hub.deviceOptions(), signal }),
      'ServiceClient.connect': () => c2d.ServiceClient.connect(hub.ownerConnectionString, { ...hub.serviceOptions(), signal }),
      receive: () => device.receive({ signal }),
      'messages().next': () => device.messages({ signal }).next(),
      send: () => service.send('dev1', 'never', { signal }),
      purge: () => service.purge('dev1', { signal }),
      'feedback().next': () => service.feedback({ signal }).next(),
      createDevice: () => service.registry.createDevice('dev2', { signal }),
      getDevice: () => service.registry.getDevice('dev1', { signal }),
      listDevices: () => service.registry.listDevices({ signal }),
      deleteDevice: () => service.registry.deleteDevice('dev1', { signal }),
    };
    for (const [name, call] of Object.entries(calls)) {
      await assert.rejects(call(), (e) => e === reason, name);
    }
    // nothing was sent, created or deleted
    assert.equal(hub.queueDepth('dev1'), 0);
    await assert.rejects(service.registry.getDevice('dev2'), c2d.DeviceNotFoundError);
    const sent = await service.send('dev1', new c2d.Message('now', { ack: c2d.Ack.Full }));
    await assert.rejects(sent.outcome({ signal }), (e) => e === reason, 'outcome');
    const m = await received(device);
    await assert.rejects(m.complete({ signal }), (e) => e === reason, 'complete');
    assert.equal(m.settled, false, 'the aborted complete did nothing');
    await m.complete();
    assert.equal((await sent.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Success);
    await device.close();
    await service.close();
  } finally {
    await hub.stop();
  }
});

test('an aborted outcome() leaves the record to a later call; an aborted feedback wait takes none', async () => {
  const hub = await startHub();
  try {
    const cs = await hub.createDevice('dev1');
    const device = await c2d.DeviceClient.connect(cs, { ...hub.deviceOptions(), transport: c2d.Transport.Amqp });
    const service = await c2d.ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
    const sent = await service.send('dev1', new c2d.Message('hello', { ack: c2d.Ack.Full }));
    const controller = new AbortController();
    const records = service.feedback({ signal: controller.signal });
    const outcome = sent.outcome({ signal: controller.signal });
    const next = records.next();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(outcome, isAbortError);
    await assert.rejects(next, isAbortError);
    await (await received(device)).complete();
    const record = await sent.outcome({ timeoutMs: WAIT });
    assert.equal(record.status, c2d.FeedbackStatus.Success);
    assert.equal(record.originalMessageId, sent.messageId);
    const stream = service.feedback();
    await device.close();
    await service.close();
    // the stream made after the record ends with the client, empty
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  } finally {
    await hub.stop();
  }
});

test('the message iterator ends with the signal, and the next receive has the message', async () => {
  const hub = await startHub();
  try {
    const cs = await hub.createDevice('dev1');
    const device = await c2d.DeviceClient.connect(cs, hub.deviceOptions());
    const service = await c2d.ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
    const controller = new AbortController();
    const iterating = (async () => {
      for await (const m of device.messages({ signal: controller.signal })) await m.complete();
    })();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(iterating, isAbortError);
    await service.send('dev1', 'after the abort');
    assert.equal((await received(device)).body.toString(), 'after the abort');
    await device.close();
    await service.close();
  } finally {
    await hub.stop();
  }
});

test('a connect to a hub that never answers is aborted at once', async () => {
  const sockets = new Set();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = silent.address().port;
  try {
    const attempts = {
      mqtt: (signal) => c2d.DeviceClient.connect('HostName=localhost;DeviceId=d;SharedAccessKey=a2V5',
        { transport: c2d.Transport.Mqtt, port, signal }),
      amqp: (signal) => c2d.DeviceClient.connect('HostName=localhost;DeviceId=d;SharedAccessKey=a2V5',
        { transport: c2d.Transport.Amqp, port, signal }),
      service: (signal) => c2d.ServiceClient.connect('HostName=localhost;SharedAccessKeyName=s;SharedAccessKey=a2V5',
        { port, signal }),
    };
    for (const [name, connect] of Object.entries(attempts)) {
      const started = Date.now();
      await assert.rejects(connect(AbortSignal.timeout(200)), (e) => e.name === 'TimeoutError', name);
      // the operation timeout is 30 s: the abort ended it
      assert.ok(Date.now() - started < 10_000, `${name} took ${Date.now() - started} ms`);
    }
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});
