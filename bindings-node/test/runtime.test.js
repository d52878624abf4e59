// How the package lives in a Node.js process: retry functions, the EventEmitter adapter,
// a process that exits by itself once its clients are closed, and a forgotten client that
// is closed when it is collected.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const c2d = require('..');
const { WAIT, startHub } = require('./helpers');

/** Runs `code` in a fresh `node` (with `args`); resolves to its stdout, or rejects with
 * what it printed when it failed or had not exited after `timeoutMs`. */
function child(code, { args = [], timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...args, '-e', code], {
      cwd: path.join(__dirname, '..'),
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.killed ? 'still running' : err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

test('a retry function decides each retry', async () => {
  // a port where nothing listens: connecting is refused, a transient error
  const hub = await startHub();
  const cs = await hub.createDevice('d');
  const port = hub.amqpPort;
  const ca = hub.caPem;
  await hub.stop();
  const calls = [];
  const decide = (attempt, error) => {
    calls.push([attempt, error.constructor.name, error.code]);
    return attempt < 3 ? 10 : null;
  };
  await assert.rejects(
    c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Amqp, port, trustedCa: ca, retry: decide }),
    c2d.UnavailableError,
  );
  assert.deepEqual(calls, [1, 2, 3].map((n) => [n, 'UnavailableError', 'C2D_UNAVAILABLE']));

  // a function that throws stops retrying, with a warning
  const warnings = [];
  const onWarning = (w) => warnings.push(w.message);
  process.on('warning', onWarning);
  await assert.rejects(
    c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Amqp, port, trustedCa: ca, retry: () => { throw new Error('no'); } }),
    c2d.UnavailableError,
  );
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  assert.ok(warnings.some((w) => /retry function threw/.test(w)), warnings);

  // the engine's own policies end too, each after its last retry
  for (const retry of [c2d.RetryPolicy.fixed(10, { maxRetries: 2 }), c2d.RetryPolicy.none(),
    c2d.RetryPolicy.exponentialBackoff({ initialMs: 1, maxMs: 5, maxRetries: 3 })]) {
    await assert.rejects(
      c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Amqp, port, trustedCa: ca, retry }),
      c2d.UnavailableError,
    );
  }
  assert.match(String(c2d.RetryPolicy.exponentialBackoff()), /exponentialBackoff/);
});

test('the EventEmitter adapter: message, status and error events', async () => {
  const hub = await startHub();
  const svc = await c2d.ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
  const cs = await hub.createDevice('dev1');
  const dev = await c2d.DeviceClient.connect(cs, {
    transport: c2d.Transport.Amqp, retry: c2d.RetryPolicy.none(), ...hub.deviceOptions(),
  });
  const statuses = [];
  dev.on('status', (s) => statuses.push(s));
  // nothing is received before the first 'message' listener: messages wait at the hub
  const sent = await svc.send('dev1', new c2d.Message('one', { ack: c2d.Ack.Full }));
  const got = new Promise((resolve) => dev.once('message', resolve));
  const m = await got;
  assert.equal(m.body.toString(), 'one');
  assert.equal(m.settled, false);
  await m.complete();
  assert.equal((await sent.outcome({ timeoutMs: WAIT })).status, c2d.FeedbackStatus.Success);

  // without a 'message' listener nothing more is taken from the hub
  const handler = (msg) => assert.fail(`received ${msg.body} with no listener wanted`);
  dev.once('message', async (first) => {
    await first.complete();
  });
  await svc.send('dev1', 'two');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(dev.listenerCount('message'), 0);
  await svc.send('dev1', 'three');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(hub.queueDepth('dev1'), 1);
  dev.on('message', handler);
  dev.off('message', handler);
  const again = await dev.receive({ timeoutMs: WAIT });
  assert.equal(again.body.toString(), 'three');
  await again.complete();

  // the hub goes away and the policy says never retry: receiving ends with an 'error'
  dev.on('message', () => {});
  const failed = new Promise((resolve) => dev.once('error', resolve));
  await svc.close();
  await hub.stop();
  const err = await failed;
  assert.ok(err instanceof c2d.C2DError, err);
  assert.deepEqual(statuses.at(-1).state, c2d.ConnectionState.Disconnected);
  await dev.close();
});

test('the process exits by itself once its clients are closed', async () => {
  const out = await child(`
    const c2d = require('.');
    (async () => {
      const hub = await c2d.LocalHub.start({ feedbackIntervalMs: 0 });
      const cs = await hub.createDevice('dev1');
      const svc = await c2d.ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
      const dev = await c2d.DeviceClient.connect(cs, { transport: 'amqp', ...hub.deviceOptions() });
      dev.on('status', () => {});
      const sent = await svc.send('dev1', new c2d.Message('x', { ack: c2d.Ack.Full }));
      dev.on('message', (m) => m.complete());
      console.log((await sent.outcome()).status);
      const feedback = svc.feedback();
      const changes = dev.statusChanges();
      // pending iterators and listeners end with the clients
      const pending = Promise.allSettled([feedback.next(), changes.next(), dev.receive()]);
      await dev.close();
      await svc.close();
      await hub.stop();
      console.log('closed');
      const ends = (await pending).map((p) => p.status === 'fulfilled' ? JSON.stringify(p.value) : p.reason.code);
      console.log(ends.join(' '));
    })();
  `);
  assert.deepEqual(out.trim().split('\n'), ['Success', 'closed',
    '{"done":true} {"value":{"state":"disconnected","reason":"closed"},"done":false} C2D_CLOSED']);
});

test('a client forgotten without close() is closed when collected', async () => {
  const out = await child(`
    const c2d = require('.');
    (async () => {
      const hub = await c2d.LocalHub.start();
      const cs = await hub.createDevice('dev1');
      let dev = await c2d.DeviceClient.connect(cs, { transport: 'amqp', ...hub.deviceOptions() });
      const changes = dev.statusChanges();
      dev = null;
      const next = changes.next();
      for (let i = 0; i < 50; i++) {
        global.gc();
        const done = await Promise.race([next, new Promise((r) => setTimeout(r, 100))]);
        if (done) {
          console.log(JSON.stringify(done.value));
          break;
        }
      }
      await hub.stop();
    })();
  `, { args: ['--expose-gc'] });
  assert.deepEqual(JSON.parse(out), { state: 'disconnected', reason: 'closed' });
});
