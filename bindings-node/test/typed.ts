// The README's sketch, typed: compiled with `tsc --strict` against the committed index.d.ts
// (test/tsconfig.json) and run, so that the declarations and the package agree.
import * as assert from 'node:assert/strict';

import {
  Ack, ActiveFault, C2DError, ConnectionStatus, DeviceClient, FeedbackRecord, FeedbackStatus, LocalHub, Message,
  FanOutSummary, ReceivedMessage, RetryPolicy, SendRefusal, SendResult, ServiceClient, Transport, UnsupportedError,
} from 'c2d';

async function main(): Promise<void> {
  const hub: LocalHub = await LocalHub.start({ manualClock: true, feedbackIntervalMs: 0 });
  const devCs: string = await hub.createDevice('dev1');
  const svc = await ServiceClient.connect(hub.serviceConnectionString, hub.serviceOptions());
  const sent = await svc.send('dev1', new Message(Buffer.from('reboot'),
    { ack: Ack.Full, ttlMs: 60_000, messageId: 'm1', properties: { k: 'v' } }));
  const retry = (attempt: number, error: C2DError): number | null => (error.transient && attempt < 5 ? 100 : null);
  const dev = await DeviceClient.connect(devCs, { transport: Transport.Amqp, retry, ...hub.deviceOptions() });
  const status: ConnectionStatus = dev.status;
  assert.equal(status.state, 'connected');
  for await (const msg of dev.messages()) {
    const body: Buffer = msg.body;
    const id: string | null = msg.messageId;
    const props: Record<string, string> = msg.properties;
    const count: number = msg.deliveryCount;
    const when: Date | null = msg.enqueuedTime;
    assert.deepEqual([body.toString(), id, props.k, count, when instanceof Date], ['reboot', 'm1', 'v', 0, true]);
    await msg.complete();
    break;
  }
  const none: ReceivedMessage | null = await dev.receive({ timeoutMs: 100 });
  assert.equal(none, null);
  const controller = new AbortController();
  const waiting: Promise<ReceivedMessage | null> = dev.receive({ signal: controller.signal });
  controller.abort();
  await assert.rejects(waiting, (e: unknown) => e instanceof DOMException && e.name === 'AbortError');
  const record: FeedbackRecord = await sent.outcome({ timeoutMs: 30_000, signal: AbortSignal.timeout(30_000) });
  assert.equal(record.status, FeedbackStatus.Success);
  assert.equal(await svc.purge('dev1'), 0);

  const page: string = hub.uiUrl;
  assert.ok(page.startsWith(`https://localhost:${hub.httpsPort}/ui/?token=`));

  const owner = await ServiceClient.connect(hub.ownerConnectionString, { ...hub.serviceOptions(), retry: RetryPolicy.none() });
  await owner.registry.createDevice('dev2');
  assert.equal((await owner.registry.getDevice('dev2')).deviceId, 'dev2');
  const results: SendResult[] = [];
  const fanOut = owner.sendMany(['dev2', 'ghost'], 'to many', { tier: 'S3', units: 1, inFlight: 8 });
  for await (const r of fanOut) results.push(r);
  const summary: FanOutSummary = fanOut.summary;
  assert.deepEqual([summary.sent, summary.failed], [1, { C2D_DEVICE_NOT_FOUND: 1 }]);
  assert.equal(results.find((r) => r.deviceId === 'ghost')?.error?.code, 'C2D_DEVICE_NOT_FOUND');
  await owner.registry.deleteDevice('dev2');
  await owner.close();

  await dev.close();
  const mqtt = await DeviceClient.connect(devCs, { transport: Transport.Mqtt, ...hub.deviceOptions() });
  await svc.send('dev1', 'no reject over MQTT');
  const m = await mqtt.receive({ timeoutMs: 15_000 });
  assert.ok(m);
  await assert.rejects(m.reject(), (e: unknown) => e instanceof UnsupportedError && e.code === 'C2D_UNSUPPORTED');
  await hub.advanceClock(61_000);

  // faults on demand, and a device that hands each message over once
  const once = await DeviceClient.connect(devCs, { transport: Transport.Amqp, suppressDuplicates: true, ...hub.deviceOptions() });
  hub.faults.delayDeliveries('dev1', 10);
  const active: ActiveFault[] = hub.faults.active();
  assert.deepEqual(active, [{ fault: 'delay', device: 'dev1', delay_ms: 10 }]);
  const refusal: SendRefusal = 'busy';
  hub.faults.refuseSends(refusal, { count: 1 });
  const strict = await ServiceClient.connect(hub.serviceConnectionString, { ...hub.serviceOptions(), retry: RetryPolicy.none() });
  await assert.rejects(strict.send('dev1', 'refused'), (e: unknown) => e instanceof C2DError && e.code === 'C2D_UNAVAILABLE');
  await strict.close();
  hub.faults.clear();
  const dupes: number = once.duplicatesSuppressed;
  assert.equal(dupes, 0);
  await once.close();

  await mqtt.close();
  await svc.close();
  await hub.stop();
  console.log('typed: ok');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
