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

/**
 * A real HTTP CONNECT proxy on 127.0.0.1 that wants `user:secret` and records the targets
 * of its tunnels.
 */
function startProxy() {
  const net = require('node:net');
  const want = `Basic ${Buffer.from('user:secret').toString('base64')}`;
  const proxy = { tunnels: [], refused: 0, sockets: new Set() };
  const server = net.createServer((client) => {
    proxy.sockets.add(client);
    client.on('close', () => proxy.sockets.delete(client));
    client.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 8192) client.destroy();
        return;
      }
      client.off('data', onData);
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const [verb, target] = lines[0].split(' ');
      const auth = lines.slice(1).filter((l) => l.toLowerCase().startsWith('proxy-authorization:'))
        .map((l) => l.slice(l.indexOf(':') + 1).trim());
      if (verb !== 'CONNECT' || auth.length !== 1 || auth[0] !== want) {
        proxy.refused += 1;
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const colon = target.lastIndexOf(':');
      const upstream = net.connect(Number(target.slice(colon + 1)), target.slice(0, colon), () => {
        proxy.tunnels.push(target);
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length) upstream.write(rest);
        client.pipe(upstream).pipe(client);
      });
      proxy.sockets.add(upstream);
      upstream.on('close', () => { proxy.sockets.delete(upstream); client.destroy(); });
      upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
      client.on('close', () => upstream.destroy());
    };
    client.on('data', onData);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      proxy.url = (password = 'secret') => `http://user:${password}@127.0.0.1:${server.address().port}`;
      proxy.close = () => {
        for (const s of proxy.sockets) s.destroy();
        return new Promise((done) => server.close(done));
      };
      resolve(proxy);
    });
  });
}

module.exports = { TRANSPORTS, POLL_MS, WAIT, startHub, startProxy, settlesAll, fastRetry, received };
