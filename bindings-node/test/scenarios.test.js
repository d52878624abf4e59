// The scenario list (complete → Success; reject → Rejected; abandon → redelivery; max
// delivery → DeliveryCountExceeded; TTL → Expired; purge → Purged; lock expiry →
// redelivery; queue full; too large; unknown device; bad token; closed client) on every
// device transport; X.509 devices; and HTTP proxies.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const c2d = require('..');
const { TRANSPORTS, POLL_MS, WAIT, startHub, startProxy, settlesAll, fastRetry, received } = require('./helpers');

for (const transport of TRANSPORTS) {
  test(`scenarios over ${transport}`, async () => {
    const hub = await startHub();
    const svc = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
    const { connectionString: cs } = await svc.registry.createDevice('dev1');
    assert.ok(cs);
    const device = await c2d.DeviceClient.connect(cs, { transport, retry: fastRetry(), pollIntervalMs: POLL_MS, ...hub.deviceOptions() });
    assert.equal(device.transport, transport);
    assert.deepEqual(device.status, { state: c2d.ConnectionState.Connected, reason: null });

    // complete → Success, with what the sender set kept; read through the async iterator
    const sent = await svc.send('dev1', new c2d.Message('hello', {
      ack: c2d.Ack.Full, correlationId: 'c-1', contentType: 'text/plain', properties: { colour: 'blue', 'a b': 'c&d' },
    }));
    for await (const m of device.messages()) {
      assert.deepEqual([m.body, m.messageId, m.correlationId], [Buffer.from('hello'), sent.messageId, 'c-1']);
      // over HTTPS properties are headers: a name that is no HTTP token ('a b') cannot be one
      const expected = transport === c2d.Transport.Https ? { colour: 'blue' } : { colour: 'blue', 'a b': 'c&d' };
      assert.deepEqual(m.properties, expected);
      assert.equal(m.ack, c2d.Ack.Full);
      assert.equal(m.deliveryCount, 0);
      if (settlesAll(transport)) {
        // MQTT's topic carries no enqueued time
        assert.ok(m.enqueuedTime instanceof Date);
        assert.ok(Math.abs(m.enqueuedTime.getTime() - Date.now()) < 60_000);
      }
      assert.equal(m.settled, false);
      await m.complete();
      assert.equal(m.settled, true);
      break;
    }
    const record = await sent.outcome({ timeoutMs: WAIT });
    assert.equal(record.status, c2d.FeedbackStatus.Success);
    assert.equal(record.deviceId, 'dev1');
    assert.equal(record.originalMessageId, sent.messageId);
    assert.ok(record.enqueuedTime instanceof Date);

    // reject → Rejected; abandon → redelivery; the last allowed abandon → DeliveryCountExceeded
    const rejected = await svc.send('dev1', new c2d.Message(Buffer.from('reject me'), { ack: c2d.Ack.Full }));
    let m = await received(device);
    if (settlesAll(transport)) {
      await m.reject();
      assert.equal((await rejected.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Rejected);
      const abandoned = await svc.send('dev1', new c2d.Message('abandon me', { ack: c2d.Ack.Full }));
      for (let count = 0; count < 3; count++) {
        m = await received(device);
        assert.deepEqual([m.body.toString(), m.deliveryCount], ['abandon me', count]);
        await m.abandon();
      }
      assert.equal((await abandoned.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.DeliveryCountExceeded);
    } else {
      await assert.rejects(m.reject(), c2d.UnsupportedError);
      await assert.rejects(m.abandon(), c2d.UnsupportedError);
      // refused, and nothing changed: the message is still the application's to complete (a
      // poison message it cannot dead-letter need not come back for ever)
      assert.equal(m.settled, false);
      await m.complete();
      assert.equal(m.settled, true);
      assert.equal((await rejected.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Success);
    }

    // unknown device; TTL → Expired (the clock passes the expiry; no device involved)
    await assert.rejects(svc.send('nobody', 'x'), c2d.DeviceNotFoundError);
    await svc.registry.createDevice('offline');
    const expiring = await svc.send('offline', new c2d.Message('late', { ack: c2d.Ack.Negative, ttlMs: 30_000 }));
    await hub.advanceClock(31_000);
    assert.equal((await expiring.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Expired);

    // purge → Purged
    const purged = await svc.send('offline', new c2d.Message('p', { ack: c2d.Ack.Full }));
    assert.equal(await svc.purge('offline'), 1);
    assert.equal((await purged.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Purged);

    // queue full; too large
    for (let i = 0; i < 5; i++) await svc.send('offline', 'fill');
    assert.equal(hub.queueDepth('offline'), 5);
    await assert.rejects(svc.send('offline', 'full'), (e) => e instanceof c2d.QueueFullError && e.code === 'C2D_QUEUE_FULL');
    await assert.rejects(svc.send('dev1', Buffer.alloc(2000)), c2d.MessageTooLargeError);

    // lock expiry → redelivery; the first delivery, settled after its lock ended on the hub's
    // clock, does not count (over MQTT, whose PUBACKs go out in arrival order, settling it lets
    // the second delivery's go out); the second one's completion does
    const slow = await svc.send('dev1', new c2d.Message('slow', { ack: c2d.Ack.Full }));
    const first = await received(device);
    hub.advanceClock(61_000);
    const second = await received(device);
    assert.equal(second.body.toString(), 'slow');
    const completed = second.complete();
    if (transport === c2d.Transport.Https) {
      // the hub ended the first lock: its token is refused (412)
      await assert.rejects(first.complete(), c2d.MessageLockLostError);
    } else {
      await first.complete().catch((e) => assert.ok(e instanceof c2d.MessageLockLostError, e));
    }
    await completed;
    assert.equal((await slow.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Success);

    // feedback(): every record, as an async iterator
    const feedback = svc.feedback();
    const watched = await svc.send('dev1', new c2d.Message('watched', { ack: c2d.Ack.Positive }));
    await (await received(device)).complete();
    let seen;
    for await (const r of feedback) {
      if (r.originalMessageId === watched.messageId) {
        seen = r;
        break;
      }
    }
    assert.equal(seen.status, c2d.FeedbackStatus.Success);

    // nothing more queued: receive times out with null
    assert.equal(await device.receive({ timeoutMs: 200 }), null);

    // bad token: refused, and not retried
    const bad = cs.replace('SharedAccessKey=', 'SharedAccessKey=AAAA');
    await assert.rejects(
      c2d.DeviceClient.connect(bad, { transport, retry: fastRetry(), pollIntervalMs: POLL_MS, ...hub.deviceOptions() }),
      c2d.UnauthorizedError,
    );

    // closed clients: the iterators end, receive rejects
    const changes = device.statusChanges();
    await device.close();
    assert.deepEqual(device.status, { state: c2d.ConnectionState.Disconnected, reason: 'closed' });
    const states = [];
    for await (const s of changes) states.push(s.state);
    assert.deepEqual(states.at(-1), c2d.ConnectionState.Disconnected);
    const after = [];
    for await (const late of device.messages()) after.push(late);
    assert.deepEqual(after, []);
    await assert.rejects(device.receive({ timeoutMs: 1000 }), c2d.ClosedError);
    await svc.close();
    await assert.rejects(svc.send('dev1', 'x'), c2d.ClosedError);
    await hub.stop();
  });
}

// X.509: a device receives with its certificate (in memory, or from files); another
// device's certificate is refused by the hub; x509=true without one is refused at once
for (const transport of TRANSPORTS) {
  test(`X.509 device over ${transport}`, async (t) => {
    const hub = await startHub();
    t.after(() => hub.stop());
    const me = await hub.createX509Device('x1');
    const other = await hub.createX509Device('x2');
    assert.ok(me.connectionString.endsWith(';x509=true'));
    const options = { transport, retry: c2d.RetryPolicy.none(), pollIntervalMs: POLL_MS, ...hub.deviceOptions() };
    const svc = await c2d.ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
    t.after(() => svc.close());

    const device = await c2d.DeviceClient.connect(me.connectionString, { ...options, cert: me.certPem, key: Buffer.from(me.keyPem) });
    const sent = await svc.send('x1', new c2d.Message('by certificate', { ack: c2d.Ack.Full }));
    await (await received(device)).complete();
    assert.equal((await sent.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Success);
    await device.close();

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'c2d-x509-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'x1.pem'), me.certPem);
    fs.writeFileSync(path.join(dir, 'x1.key'), me.keyPem);
    const fromFiles = await c2d.DeviceClient.connect(me.connectionString, {
      ...options, certFile: path.join(dir, 'x1.pem'), keyFile: path.join(dir, 'x1.key'),
    });
    await svc.send('x1', 'from files');
    const m = await received(fromFiles);
    assert.equal(m.body.toString(), 'from files');
    await m.complete();
    await fromFiles.close();

    await assert.rejects(
      c2d.DeviceClient.connect(me.connectionString, { ...options, cert: other.certPem, key: other.keyPem }),
      c2d.UnauthorizedError,
    );
    await assert.rejects(c2d.DeviceClient.connect(me.connectionString, options), c2d.InvalidArgumentError);
    await assert.rejects(c2d.DeviceClient.connect(me.connectionString, { ...options, cert: me.certPem }), c2d.InvalidArgumentError);
    await assert.rejects(c2d.DeviceClient.connect(me.connectionString, { ...options, cert: 42 }), TypeError);
  });
}

// every transport a proxy carries, on the device and the service, through a real CONNECT
// proxy with basic authentication; wrong proxy credentials; a proxy with plain MQTT
test('through an HTTP proxy', async (t) => {
  const hub = await startHub();
  t.after(() => hub.stop());
  const proxy = await startProxy();
  t.after(() => proxy.close());
  const svc = await c2d.ServiceClient.connect(hub.ownerConnectionString, {
    ...hub.serviceOptions(), transport: c2d.ServiceTransport.AmqpWs, proxy: proxy.url(),
  });
  t.after(() => svc.close());
  const { connectionString: cs } = await svc.registry.createDevice('dev1');
  const https = `localhost:${hub.httpsPort}`;
  assert.ok(proxy.tunnels.length > 0);
  for (const transport of [c2d.Transport.MqttWs, c2d.Transport.AmqpWs, c2d.Transport.Https]) {
    const before = proxy.tunnels.length;
    const options = { transport, retry: c2d.RetryPolicy.none(), pollIntervalMs: POLL_MS, ...hub.deviceOptions() };
    const device = await c2d.DeviceClient.connect(cs, { ...options, proxy: proxy.url() });
    assert.ok(proxy.tunnels.length > before, `${transport} did not use the proxy`);
    const sent = await svc.send('dev1', new c2d.Message('via proxy', { ack: c2d.Ack.Full }));
    await (await received(device)).complete();
    assert.equal((await sent.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Success);
    await device.close();
    await assert.rejects(c2d.DeviceClient.connect(cs, { ...options, proxy: proxy.url('wrong') }), c2d.UnauthorizedError);
  }
  assert.deepEqual([...new Set(proxy.tunnels)], [https]);
  await assert.rejects(
    c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Mqtt, proxy: proxy.url(), ...hub.deviceOptions() }),
    c2d.InvalidArgumentError,
  );
  await assert.rejects(c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Https, proxy: 'socks5://127.0.0.1:1' }), c2d.InvalidArgumentError);
  await assert.rejects(c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Https, proxy: 42 }), TypeError);
});
