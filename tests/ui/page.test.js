// The hub's live page in headless Chromium: the token opens it (and nothing else does), a
// device and its queue depth show, messages sent by a c2d ServiceClient appear and leave as
// a device completes them without the page reloading, a body with HTML in it is shown as
// text, the page's own actions (a test message with its outcome, purge) work, and a fault
// in force is shown while it lasts.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { chromium } = require('playwright-core');
const c2d = require('c2d');

const WAIT = 15_000;
const CHROMIUM = process.env.C2D_CHROMIUM || '/usr/bin/chromium';
// as root and offline: no sandbox, and none of Chromium's own calls home
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = process.env.C2D_UI_SCREENSHOTS || path.join(__dirname, '..', '..', 'target', 'ui');

/** Waits until `fn(arg)` is true in the page. */
function until(page, fn, arg) {
  return page.waitForFunction(fn, arg, { timeout: WAIT });
}

function depthOf(page, device) {
  return page.getAttribute(`#devices tr[data-device="${device}"] td[data-depth]`, 'data-depth');
}

test('the live page follows the hub without reloading', async () => {
  const hub = await c2d.LocalHub.start({ feedbackIntervalMs: 0 });
  const svc = await c2d.ServiceClient.connect(hub.ownerConnectionString, hub.serviceOptions());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const { connectionString: cs } = await svc.registry.createDevice('greenhouse-7');
    const { connectionString: pumpCs } = await svc.registry.createDevice('pump-3');
    const { connectionString: valveCs } = await svc.registry.createDevice('valve-9');
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    // without the token, or with a wrong one: 401 (in a tab of its own: the browser logs
    // each 401 as an error, which the page's tab must not see)
    const [base, token] = hub.uiUrl.split('/ui/?token=');
    assert.equal(token.length, 48);
    const probe = await context.newPage();
    assert.equal((await probe.goto(`${base}/ui/`)).status(), 401);
    assert.equal((await probe.goto(`${base}/ui/?token=${'0'.repeat(48)}`)).status(), 401);
    assert.equal((await probe.goto(`${base}/ui/events`)).status(), 401);
    assert.equal((await probe.goto(`${base}/metrics`)).status(), 401);
    await probe.close();

    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });

    // the address with the token: the page, and the token gone from the address bar
    assert.equal((await page.goto(hub.uiUrl)).status(), 200);
    assert.equal(page.url(), `${base}/ui/`);
    await until(page, () => document.getElementById('live').textContent === 'live');
    await page.locator('#devices tr[data-device="greenhouse-7"]').waitFor({ timeout: WAIT });
    assert.equal(await depthOf(page, 'greenhouse-7'), '0');
    await page.evaluate(() => { window.notReloaded = true; });
    await page.click('#devices tr[data-device="greenhouse-7"]');
    await until(page, () => document.getElementById('queue-device').textContent === 'greenhouse-7');

    // a message from the service: the depth moves and its row appears
    const html = '<img src=x onerror="window.injected = 1"><b>bold</b>';
    const first = await svc.send('greenhouse-7', new c2d.Message(html, { ack: c2d.Ack.Full, properties: { kind: 'html' } }));
    await until(page, (id) => !!document.querySelector(`#queue tr[data-message-id="${id}"]`), first.messageId);
    await until(page, () => document.querySelector('#devices tr[data-device="greenhouse-7"] td[data-depth]').dataset.depth === '1');
    const row = page.locator(`#queue tr[data-message-id="${first.messageId}"]`);
    assert.match(await row.textContent(), /Enqueued/);
    assert.match(await row.textContent(), /kind=html/);

    // its body, on request, as text
    await row.locator('button.show-body').click();
    await until(page, () => !document.getElementById('body-view').hidden);
    assert.equal(await page.textContent('#body-text'), html);
    assert.equal(await page.locator('#body-text *').count(), 0);
    assert.equal(await page.evaluate(() => window.injected), undefined);

    // a device connects and completes it: the row leaves, Success comes back
    const device = await c2d.DeviceClient.connect(cs, { transport: c2d.Transport.Mqtt, ...hub.deviceOptions() });
    await until(page, () => document.querySelector('#devices tr[data-device="greenhouse-7"] td[data-connection]').dataset.connection === 'mqtt');
    const m = await device.receive({ timeoutMs: WAIT });
    assert.equal(m.messageId, first.messageId);
    await until(page, (id) => document.querySelector(`#queue tr[data-message-id="${id}"]`)?.textContent.includes('Invisible'), first.messageId);
    await m.complete();
    await until(page, (id) => !document.querySelector(`#queue tr[data-message-id="${id}"]`), first.messageId);
    assert.equal(await depthOf(page, 'greenhouse-7'), '0');
    await until(page, (id) => document.querySelector(`#feedback tr[data-message-id="${id}"]`)?.textContent.includes('Success'), first.messageId);

    // a test message from the page, completed by the device: its outcome shows
    await page.fill('#send-body', 'ping from the page');
    await page.click('#send-form button[type=submit]');
    await until(page, () => document.getElementById('action-status').textContent.startsWith('Sent '));
    const ping = await device.receive({ timeoutMs: WAIT });
    assert.equal(ping.body.toString(), 'ping from the page');
    assert.equal(ping.ack, c2d.Ack.Full);
    await ping.complete();
    await until(page, () => document.getElementById('action-status').dataset.outcome === 'Success');
    assert.match(await page.textContent('#action-status'), new RegExp(`Outcome of ${ping.messageId}: Success`));
    await device.close();
    await until(page, () => document.querySelector('#devices tr[data-device="greenhouse-7"] td[data-connection]').dataset.connection === '');

    // purge from the page (two clicks): the queue empties, with Purged feedback
    const purged = [];
    for (let i = 0; i < 3; i++) {
      purged.push(await svc.send('greenhouse-7', new c2d.Message(`stale ${i}`, { ack: c2d.Ack.Full })));
    }
    await until(page, () => document.querySelectorAll('#queue tbody tr').length === 3);
    await page.click('#purge');
    await page.click('#purge');
    await until(page, () => document.getElementById('action-status').dataset.outcome === 'Purged');
    await until(page, () => document.querySelectorAll('#queue tbody tr').length === 0);
    for (const p of purged) {
      await until(page, (id) => document.querySelector(`#feedback tr[data-message-id="${id}"]`)?.textContent.includes('Purged'), p.messageId);
    }

    // a rejection is a dead letter, with its reason
    const pump = await c2d.DeviceClient.connect(pumpCs, { transport: c2d.Transport.Amqp, ...hub.deviceOptions() });
    const bad = await svc.send('pump-3', new c2d.Message('{"rpm": -1}', { ack: c2d.Ack.Negative }));
    await (await pump.receive({ timeoutMs: WAIT })).reject();
    await until(page, (id) => document.querySelector(`#dead-letters tr[data-message-id="${id}"]`)?.textContent.includes('Rejected'), bad.messageId);

    // an HTTPS device is never connected; its last poll shows
    const valve = await c2d.DeviceClient.connect(valveCs, { transport: c2d.Transport.Https, pollIntervalMs: 200, ...hub.deviceOptions() });
    await until(page, () => document.querySelector('#devices tr[data-device="valve-9"] td[data-connection]')?.textContent.startsWith('https, polled'));

    // a fault in force shows while it lasts, and goes when cleared
    assert.equal(await page.isHidden('#faults'), true);
    hub.faults.loseAcks('pump-3', 2);
    await until(page, () => !document.getElementById('faults').hidden
      && document.getElementById('faults-list').textContent.includes('losing the next 2 acknowledgement(s) of pump-3'));
    hub.faults.clear();
    await until(page, () => document.getElementById('faults').hidden);

    // something in the queue for the picture, then the pictures (wide, and a phone's)
    for (const [i, setpoint] of [21.5, 22, 19].entries()) {
      await svc.send('greenhouse-7', new c2d.Message(JSON.stringify({ setpoint }), {
        ack: c2d.Ack.Full, contentType: 'application/json', properties: { command: 'set-temperature', zone: `z${i + 1}` },
      }));
    }
    await until(page, () => document.querySelectorAll('#queue tbody tr').length === 3);
    await page.click('#body-close');
    assert.equal(await page.evaluate(() => window.notReloaded), true);
    assert.deepEqual(problems, []);
    await page.screenshot({ path: path.join(SHOTS, 'hub-page.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(SHOTS, 'hub-page-phone.png'), fullPage: true });
    await pump.close();
    await valve.close();
  } finally {
    await browser.close();
    await svc.close();
    await hub.stop();
  }
});
