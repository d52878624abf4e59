// One message to many devices with `ServiceClient.sendMany`, against a real hub: a result per
// device, pacing to a throttled hub's tier, and a run aborted midway reporting what it sent.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const c2d = require('..');
const { received } = require('./helpers');

const DEVICES = Array.from({ length: 300 }, (_, i) => `dev${String(i).padStart(3, '0')}`);

test('300 devices: each gets its own result, unknown and full ones their errors', async () => {
  const hub = await c2d.LocalHub.start({ maxQueueDepth: 2 });
  try {
    const connectionStrings = new Map();
    for (const d of DEVICES.slice(10)) connectionStrings.set(d, await hub.createDevice(d));
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    for (const d of DEVICES.slice(10, 15)) {
      await service.send(d, 'filler');
      await service.send(d, 'filler');
    }
    // an async generator: the ids come as the run takes them
    async function* ids() {
      for (const d of DEVICES) yield d;
    }
    const run = service.sendMany(ids(), new c2d.Message('reboot', { messageId: 'cmd-1' }), { inFlight: 16 });
    const results = new Map();
    for await (const r of run) {
      assert.ok(!results.has(r.deviceId), `${r.deviceId} twice`);
      results.set(r.deviceId, r);
    }
    assert.equal(results.size, 300);
    DEVICES.forEach((d, i) => {
      const r = results.get(d);
      if (i < 10) {
        assert.ok(r.error instanceof c2d.DeviceNotFoundError, d);
        assert.equal(r.error.code, 'C2D_DEVICE_NOT_FOUND');
        assert.equal(r.sent, null);
        assert.equal(hub.queueDepth(d), 0);
      } else if (i < 15) {
        assert.ok(r.error instanceof c2d.QueueFullError, d);
        assert.equal(hub.queueDepth(d), 2);
      } else {
        assert.equal(r.error, null, d);
        assert.equal(r.sent.messageId, `cmd-1:${d}`);
        assert.equal(hub.queueDepth(d), 1);
      }
    });
    const s = run.summary;
    assert.equal(s.sent, 285);
    assert.deepEqual(s.failed, { C2D_DEVICE_NOT_FOUND: 10, C2D_QUEUE_FULL: 5 });
    assert.equal(s.failedTotal, 15);
    assert.equal(s.throttled, 0);
    assert.equal(s.stopped, null);
    assert.equal(s.cancelled, false);
    // a real device gets its message
    const device = await c2d.DeviceClient.connect(connectionStrings.get('dev150'), hub.deviceOptions());
    const m = await received(device);
    assert.equal(m.body.toString(), 'reboot');
    assert.equal(m.messageId, 'cmd-1:dev150');
    await m.complete();
    await device.close();
    await service.close();
  } finally {
    await hub.stop();
  }
});

test('paced to a throttled hub\'s tier nothing is refused; unpaced, refusals are retried', async () => {
  const hub = await c2d.LocalHub.start();
  try {
    const ids = Array.from({ length: 100 }, (_, i) => `t${i}`);
    for (const d of ids) await hub.createDevice(d);
    hub.setThrottling('S3', 1, 200);
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    const started = Date.now();
    const run = service.sendMany(ids, 'x', { tier: 'S3', units: 1 });
    for await (const r of run) assert.equal(r.error, null, `${r.deviceId}: ${r.error}`);
    const elapsed = Date.now() - started;
    assert.equal(run.summary.sent, 100);
    assert.equal(run.summary.throttled, 0);
    assert.equal(hub.refusals('throttled'), 0);
    // 99 intervals of 12 ms at least
    assert.ok(elapsed >= 1180, `${elapsed} ms`);

    const unpaced = service.sendMany(ids, 'y', { inFlight: 64, retry: c2d.RetryPolicy.exponentialBackoff({ initialMs: 50, maxMs: 1000 }) });
    for await (const r of unpaced) assert.equal(r.error, null, `${r.deviceId}: ${r.error}`);
    const s = unpaced.summary;
    assert.equal(s.sent, 100);
    assert.ok(s.throttled > 0 && s.retried >= s.throttled, JSON.stringify(s));
    assert.equal(hub.refusals('throttled'), s.throttled);
    for (const d of ids) assert.equal(hub.queueDepth(d), 2);
    await service.close();
  } finally {
    await hub.stop();
  }
});

test('an aborted run starts no more sends and reports what it sent', async () => {
  const hub = await c2d.LocalHub.start();
  try {
    const ids = Array.from({ length: 200 }, (_, i) => `s${i}`);
    for (const d of ids) await hub.createDevice(d);
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    const controller = new AbortController();
    const run = service.sendMany(ids, 'x', { rate: 100, signal: controller.signal });
    const sent = [];
    for await (const r of run) {
      assert.equal(r.error, null);
      sent.push(r.deviceId);
      if (sent.length === 20) controller.abort();
    }
    assert.ok(run.summary.cancelled);
    assert.equal(run.summary.sent, sent.length);
    assert.ok(sent.length < 40, `${sent.length} sent`);
    assert.equal(ids.reduce((n, d) => n + hub.queueDepth(d), 0), sent.length);

    // leaving the loop early does the same
    const again = service.sendMany(ids, 'y', { rate: 100 });
    let n = 0;
    for await (const r of again) {
      assert.equal(r.error, null);
      if (++n === 5) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(again.summary.cancelled);
    assert.ok(ids.reduce((m, d) => m + hub.queueDepth(d), 0) - sent.length < 20);
    await service.close();
  } finally {
    await hub.stop();
  }
});

test('bad options and a failing id source', async () => {
  const hub = await c2d.LocalHub.start();
  try {
    await hub.createDevice('a');
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    assert.throws(() => service.sendMany(['a'], 'x', { rate: 5, tier: 'S1' }), c2d.InvalidArgumentError);
    assert.throws(() => service.sendMany(['a'], 'x', { tier: 'B1' }), c2d.InvalidArgumentError);
    assert.throws(() => service.sendMany(['a'], 'x', { inFlight: 0 }), c2d.InvalidArgumentError);
    function* ids() {
      yield 'a';
      throw new Error('the database went away');
    }
    await assert.rejects(async () => {
      for await (const _ of service.sendMany(ids(), 'x')) {
        // results until the source fails
      }
    }, /database/);
    assert.equal(hub.queueDepth('a'), 1);
    await service.close();
  } finally {
    await hub.stop();
  }
});

test('a hub started with a tier throttles its registry', async () => {
  // S1: 100 registry operations a minute, one waits its turn (600 ms), the next is refused
  const hub = await c2d.LocalHub.start({ tier: 'S1', units: 1, throttleBacklogMs: 0 });
  try {
    const service = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    const results = await Promise.allSettled([0, 1, 2].map((i) => service.registry.createDevice(`r${i}`)));
    const refused = results.filter((r) => r.status === 'rejected');
    assert.equal(refused.length, 1, JSON.stringify(results));
    assert.ok(refused[0].reason instanceof c2d.ThrottledError);
    assert.equal(refused[0].reason.code, 'C2D_THROTTLED');
    assert.equal(hub.refusals('throttled'), 1);
    await service.close();
  } finally {
    await hub.stop();
  }
});
