// The engine's errors as JavaScript errors, one class per kind with its `code`; misuse of
// the API is refused clearly.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const c2d = require('..');
const native = require('../native');
const { WAIT, startHub } = require('./helpers');

const EXPECTED = {
  C2D_INVALID_ARGUMENT: c2d.InvalidArgumentError,
  C2D_UNAUTHORIZED: c2d.UnauthorizedError,
  C2D_DEVICE_NOT_FOUND: c2d.DeviceNotFoundError,
  C2D_QUEUE_FULL: c2d.QueueFullError,
  C2D_MESSAGE_TOO_LARGE: c2d.MessageTooLargeError,
  C2D_THROTTLED: c2d.ThrottledError,
  C2D_UNAVAILABLE: c2d.UnavailableError,
  C2D_TIMEOUT: c2d.OperationTimeoutError,
  C2D_MESSAGE_LOCK_LOST: c2d.MessageLockLostError,
  C2D_ALREADY_SETTLED: c2d.AlreadySettledError,
  C2D_UNSUPPORTED: c2d.UnsupportedError,
  C2D_CLOSED: c2d.ClosedError,
  C2D_PROTOCOL: c2d.ProtocolError,
  C2D_INTERNAL: c2d.InternalError,
  C2D_QUOTA_EXCEEDED: c2d.QuotaExceededError,
};

test('every engine error kind has its own class and code', () => {
  assert.deepEqual(native.errorCodes(), Object.keys(EXPECTED), "the engine's kinds and this table differ");
  for (const [code, cls] of Object.entries(EXPECTED)) {
    let caught;
    try {
      native.raiseError(code, `a ${code} error`);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof cls, code);
    assert.equal(Object.getPrototypeOf(caught), cls.prototype, code);
    assert.ok(caught instanceof c2d.C2DError && caught instanceof Error, code);
    assert.equal(caught.code, code);
    assert.equal(caught.name, cls.name);
    assert.equal(caught.message, `a ${code} error`);
    assert.match(caught.stack, new RegExp(cls.name));
    assert.equal(caught.transient, ['C2D_THROTTLED', 'C2D_UNAVAILABLE', 'C2D_TIMEOUT'].includes(code), code);
  }
  assert.equal(new Set(Object.values(EXPECTED)).size, Object.keys(EXPECTED).length);
});

test('misuse is refused clearly', async () => {
  const hub = await startHub();
  const cs = await hub.createDevice('dev1');
  // wrong types and values, at once (before any I/O) where the call is synchronous
  await assert.rejects(c2d.DeviceClient.connect(cs, { transport: 5, ...hub.deviceOptions() }), c2d.InvalidArgumentError);
  await assert.rejects(c2d.DeviceClient.connect(cs, { transport: 'carrier-pigeon' }), c2d.InvalidArgumentError);
  await assert.rejects(c2d.DeviceClient.connect('HostName=;nonsense'), c2d.InvalidArgumentError);
  await assert.rejects(c2d.DeviceClient.connect(42), TypeError);
  await assert.rejects(c2d.DeviceClient.connect(cs, { ...hub.deviceOptions(), trustedCa: 12 }), TypeError);
  await assert.rejects(c2d.DeviceClient.connect(cs, { ...hub.deviceOptions(), trustedCaFile: '/no/such/ca.pem' }), c2d.InvalidArgumentError);
  await assert.rejects(c2d.DeviceClient.connect(cs, { ...hub.deviceOptions(), trustedCaFile: hub.caFile }), c2d.InvalidArgumentError);
  await assert.rejects(c2d.DeviceClient.connect(cs, { timeoutMs: -1, ...hub.deviceOptions() }), c2d.InvalidArgumentError);
  await assert.rejects(c2d.DeviceClient.connect(cs, { retry: 'often', ...hub.deviceOptions() }), TypeError);
  assert.throws(() => c2d.RetryPolicy.fixed(-5), c2d.InvalidArgumentError);
  assert.throws(() => c2d.RetryPolicy.exponentialBackoff({ initialMs: 5000, maxMs: 10 }), c2d.InvalidArgumentError);
  assert.throws(() => new c2d.Message(42), TypeError);

  const svc = await c2d.ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
  await assert.rejects(svc.send('dev1', new c2d.Message('x', { ttlMs: -5 })), c2d.InvalidArgumentError);
  await assert.rejects(svc.send('dev1', new c2d.Message('x', { ack: 'sometimes' })), c2d.InvalidArgumentError);
  await assert.rejects(svc.send('dev1', new c2d.Message('x', { properties: { n: 1 } })), TypeError);
  await assert.rejects(svc.send('dev1', 42), TypeError);
  await assert.rejects(c2d.ServiceClient.connect(hub.serviceConnectionString, { transport: 'mqtt' }), c2d.InvalidArgumentError);
  // the service policy has no RegistryWrite, as on IoT Hub
  await assert.rejects(svc.registry.createDevice('dev2'), c2d.UnauthorizedError);
  // a sent message's outcome, when the device never settles it
  const unsettled = await svc.send('dev1', new c2d.Message('once', { ack: c2d.Ack.Full }));
  await assert.rejects(unsettled.outcome({ timeoutMs: 100 }), c2d.OperationTimeoutError);

  // settle twice
  const dev = await c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Amqp, ...hub.deviceOptions() });
  const m = await dev.receive({ timeoutMs: WAIT });
  assert.ok(m);
  await m.complete();
  await assert.rejects(m.complete(), c2d.AlreadySettledError);
  await assert.rejects(m.reject(), (e) => e.code === 'C2D_ALREADY_SETTLED');
  // use after close; closing twice is fine
  await dev.close();
  await assert.rejects(dev.receive({ timeoutMs: 100 }), c2d.ClosedError);
  await dev.close();
  await svc.close();
  await assert.rejects(svc.purge('dev1'), c2d.ClosedError);
  await hub.stop();
  await assert.rejects(hub.createDevice('late'), c2d.ClosedError);
  assert.throws(() => hub.queueDepth('dev1'), c2d.ClosedError);
  await hub.stop();
  await assert.rejects(c2d.LocalHub.start({ durability: 'sometimes' }), c2d.InvalidArgumentError);
  const realTime = await c2d.LocalHub.start();
  assert.throws(() => realTime.advanceClock(1000), c2d.InvalidArgumentError);
  await realTime.stop();
});
