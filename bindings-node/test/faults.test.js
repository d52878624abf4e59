// Faults on demand in a real hub (`hub.faults`) as c2d's Node clients see them, and duplicate
// suppression on the device, in memory and in a file shared by two clients in turn.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const c2d = require('..');
const { POLL_MS, WAIT, startHub, fastRetry, received } = require('./helpers');

const device = (hub, cs, transport, extra = {}) =>
  c2d.DeviceClient.connect(cs, { transport, retry: fastRetry(), pollIntervalMs: POLL_MS, ...hub.deviceOptions(), ...extra });

async function eventually(what, pred) {
  const deadline = Date.now() + WAIT;
  while (!pred()) {
    assert.ok(Date.now() < deadline, `never: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const transport of [c2d.Transport.Mqtt, c2d.Transport.Amqp]) {
  test(`${transport}: a dropped connection is seen and the device reconnects by itself`, async () => {
    const hub = await startHub();
    try {
      const d = await device(hub, await hub.createDevice('dev'), transport);
      const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
      const states = [];
      const changes = d.statusChanges();
      const reconnected = (async () => {
        for await (const s of changes) {
          states.push(s.state);
          if (s.state === c2d.ConnectionState.Connected && states.includes(c2d.ConnectionState.Disconnected)) return;
        }
      })();
      assert.equal(hub.faults.dropConnections('dev', { polite: transport === c2d.Transport.Amqp }), 1);
      await reconnected;
      await service.send('dev', 'after the drop');
      const m = await received(d);
      assert.equal(m.body.toString(), 'after the drop');
      await m.complete();
      await d.close();
      await service.close();
    } finally {
      await hub.stop();
    }
  });
}

for (const transport of [c2d.Transport.Mqtt, c2d.Transport.Amqp, c2d.Transport.Https]) {
  for (const suppress of [false, true]) {
    test(`${transport}: a lost ack brings the message again${suppress ? ', handed over once with suppressDuplicates' : ''}`, async () => {
      const hub = await startHub();
      try {
        const d = await device(hub, await hub.createDevice('dev'), transport, { suppressDuplicates: suppress });
        const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
        await service.send('dev', new c2d.Message('first', { messageId: 'm1' }));
        const m = await received(d);
        hub.faults.loseAcks('dev', 1);
        assert.deepEqual(hub.faults.active(), [{ fault: 'lose-acks', device: 'dev', count: 1 }]);
        await m.complete();
        await eventually('the ack lost', () => hub.faults.acksLost === 1);
        assert.equal(hub.queueDepth('dev'), 1);
        assert.equal(hub.faults.expireLocks(), 1);
        await service.send('dev', new c2d.Message('second', { messageId: 'm2' }));
        const next = await received(d);
        if (suppress) {
          assert.equal(next.body.toString(), 'second');
          await next.complete();
          await eventually('both settled', () => hub.queueDepth('dev') === 0);
          assert.equal(d.duplicatesSuppressed, 1);
        } else {
          assert.equal(next.body.toString(), 'first', 'handed over again');
          await next.complete();
          assert.equal(d.duplicatesSuppressed, 0);
        }
        await d.close();
        await service.close();
      } finally {
        await hub.stop();
      }
    });
  }
}

test('the duplicates file keeps the window for the next client', async () => {
  const hub = await startHub();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'c2d-dups-'));
  try {
    const cs = await hub.createDevice('dev');
    const duplicatesFile = path.join(dir, 'dev.dups');
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    await service.send('dev', new c2d.Message('once', { messageId: 'job-1' }));
    const first = await device(hub, cs, c2d.Transport.Amqp, { duplicatesFile });
    const m = await received(first);
    hub.faults.loseAcks('dev');
    await m.complete();
    await eventually('the ack lost', () => hub.faults.acksLost === 1);
    await first.close();
    const second = await device(hub, cs, c2d.Transport.Mqtt, { duplicatesFile });
    await eventually('settled by the second client', () => hub.queueDepth('dev') === 0);
    assert.equal(second.duplicatesSuppressed, 1);
    await second.close();
    await service.close();
  } finally {
    await hub.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('refused sends reject with their errors, and transient ones are retried', async () => {
  const hub = await startHub();
  try {
    await hub.createDevice('dev');
    const once = await c2d.ServiceClient.connect(hub.ownerConnectionString, { retry: c2d.RetryPolicy.none(), ...hub.serviceOptions() });
    hub.faults.refuseSends('throttled', { count: 1 });
    await assert.rejects(once.send('dev', 'x'), (e) => e instanceof c2d.ThrottledError && /429001/.test(e.message));
    hub.faults.refuseSends('busy', { count: 1 });
    await assert.rejects(once.send('dev', 'x'), (e) => e instanceof c2d.UnavailableError && /503001/.test(e.message));
    hub.faults.refuseSends('quota', { count: 1 });
    await assert.rejects(once.send('dev', 'x'), (e) => e instanceof c2d.QuotaExceededError && !e.transient && /403002/.test(e.message));
    assert.throws(() => hub.faults.refuseSends('busy', {}), c2d.InvalidArgumentError);
    await once.send('dev', 'through');
    const retrying = await c2d.ServiceClient.connect(hub.ownerConnectionString, { retry: fastRetry(), ...hub.serviceOptions() });
    hub.faults.refuseSends('busy', { count: 2 });
    await retrying.send('dev', 'retried');
    assert.equal(hub.refusals('fault'), 5);
    assert.equal(hub.queueDepth('dev'), 2);
    hub.faults.stallStore(300);
    const begun = Date.now();
    await retrying.send('dev', 'slow disk');
    assert.ok(Date.now() - begun >= 250, `${Date.now() - begun} ms`);
    assert.equal(hub.queueDepth('dev'), 3);
    hub.faults.clear();
    assert.deepEqual(hub.faults.active(), []);
    await once.close();
    await retrying.close();
  } finally {
    await hub.stop();
  }
});

test('a send is answered by its completion while the disk is stalled', async () => {
  // a message its device completes before the hub has written it needs no disk: with the
  // store stalled for a minute, the send is answered by the device's completion
  const hub = await startHub();
  try {
    const d = await device(hub, await hub.createDevice('quick'), c2d.Transport.Mqtt);
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    hub.faults.stallStore(60_000);
    const begun = Date.now();
    const sending = service.send('quick', 'no disk needed');
    const m = await received(d);
    assert.equal(m.body.toString(), 'no disk needed');
    await m.complete();
    await sending;
    assert.ok(Date.now() - begun < 60_000, `${Date.now() - begun} ms`);
    assert.equal(hub.queueDepth('quick'), 0);
    hub.faults.clear();
    await d.close();
    await service.close();
  } finally {
    await hub.stop();
  }
});
