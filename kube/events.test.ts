/** EventRecorder against the API server double: deduplication, bounded memory, never throwing. */
import { startApiServer, type ApiServer } from '../test/apiserver/index.js';
import { kubeConfigFor } from '../test/apiserver/testing.js';
import { ClientKube, RESOURCES, type KubeObject } from './client.js';
import { EventRecorder, type EventRecorderOptions } from './events.js';
import { FakeClock, FaultyKube } from './testing.js';

let api: ApiServer;
let client: ClientKube;

beforeAll(async () => {
  api = await startApiServer({ tls: false });
  client = new ClientKube(kubeConfigFor(api));
});
afterAll(async () => {
  client.close();
  await api.stop();
});

let count = 0;
/** A fresh namespace and a Service in it to write events about. */
async function subject(): Promise<{ ns: string; svc: KubeObject }> {
  const ns = `ev${++count}`;
  await api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as never);
  const svc = await api.store.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: ns },
    spec: { type: 'LoadBalancer', ports: [{ port: 80 }] },
  } as never);
  return { ns, svc: svc as unknown as KubeObject };
}

const events = async (ns: string) => (await client.list(RESOURCES.events, { namespace: ns })).items;

function recorder(options: EventRecorderOptions & { kube?: FaultyKube } = {}) {
  const clock = new FakeClock(new Date('2026-03-01T12:00:00Z'));
  const logs: string[] = [];
  const rec = new EventRecorder(options.kube ?? client, { clock, log: (l) => logs.push(l), instance: 'controller-0', ...options });
  return { rec, clock, logs };
}

describe('EventRecorder', () => {
  it("writes a core/v1 Event with the controller's fields", async () => {
    const { ns, svc } = await subject();
    const { rec } = recorder();
    await rec.event(svc, 'Normal', 'IPAllocated', 'Assigned IP ["192.0.2.1"]');
    const [ev, ...more] = await events(ns);
    expect(more).toEqual([]);
    expect(ev).toMatchObject({
      metadata: { namespace: ns },
      involvedObject: { apiVersion: 'v1', kind: 'Service', namespace: ns, name: 'web', uid: svc.metadata.uid },
      reason: 'IPAllocated',
      message: 'Assigned IP ["192.0.2.1"]',
      type: 'Normal',
      count: 1,
      firstTimestamp: '2026-03-01T12:00:00Z',
      lastTimestamp: '2026-03-01T12:00:00Z',
      source: { component: 'metallb-controller' },
      reportingComponent: 'metallb.io/controller',
      reportingInstance: 'controller-0',
    });
    expect(ev?.metadata.name).toMatch(/^web\./);
  });

  it('patches count and lastTimestamp of the same event within the window instead of creating another', async () => {
    const { ns, svc } = await subject();
    const { rec, clock } = recorder();
    await rec.event(svc, 'Warning', 'AllocationFailed', 'pool full');
    await clock.advance(60_000);
    await rec.event(svc, 'Warning', 'AllocationFailed', 'pool full');
    await clock.advance(60_000);
    await rec.event(svc, 'Warning', 'AllocationFailed', 'pool full');
    const list = await events(ns);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ count: 3, firstTimestamp: '2026-03-01T12:00:00Z', lastTimestamp: '2026-03-01T12:02:00Z' });
  });

  it.each<[string, boolean, [type: 'Normal' | 'Warning', reason: string, message: string]]>([
    ['another message', false, ['Warning', 'AllocationFailed', 'no pool']],
    ['another reason', false, ['Warning', 'Other', 'pool full']],
    ['another type', false, ['Normal', 'AllocationFailed', 'pool full']],
    ['the same event', true, ['Warning', 'AllocationFailed', 'pool full']],
  ])('%s: deduplicated = %s', async (_name, same, [type, reason, message]) => {
    const { ns, svc } = await subject();
    const { rec } = recorder();
    await rec.event(svc, 'Warning', 'AllocationFailed', 'pool full');
    await rec.event(svc, type, reason, message);
    expect(await events(ns)).toHaveLength(same ? 1 : 2);
  });

  it('tells objects apart by uid: a re-created Service gets its own event', async () => {
    const { ns, svc } = await subject();
    const { rec } = recorder();
    await rec.event(svc, 'Normal', 'IPAllocated', 'x');
    await rec.event({ ...svc, metadata: { ...svc.metadata, uid: 'another-uid' } }, 'Normal', 'IPAllocated', 'x');
    expect(await events(ns)).toHaveLength(2);
  });

  it('creates a new event after the window has passed since the last occurrence', async () => {
    const { ns, svc } = await subject();
    const { rec, clock } = recorder({ windowMs: 10 * 60_000 });
    await rec.event(svc, 'Normal', 'IPAllocated', 'x');
    await clock.advance(9 * 60_000);
    await rec.event(svc, 'Normal', 'IPAllocated', 'x'); // patched: the window runs from here
    await clock.advance(9 * 60_000);
    await rec.event(svc, 'Normal', 'IPAllocated', 'x'); // still within it
    await clock.advance(10 * 60_000 + 1);
    await rec.event(svc, 'Normal', 'IPAllocated', 'x');
    const counts = (await events(ns)).map((e) => e.count).sort();
    expect(counts).toEqual([1, 3]);
  });

  it('deduplicates identical events recorded at the same time: one create, then patches', async () => {
    const { ns, svc } = await subject();
    const { rec } = recorder();
    await Promise.all(Array.from({ length: 5 }, () => rec.event(svc, 'Warning', 'AllocationFailed', 'pool full')));
    const list = await events(ns);
    expect(list).toHaveLength(1);
    expect(list[0]?.count).toBe(5);
  });

  it('remembers at most maxEntries events (LRU): the least recent one is forgotten first', async () => {
    const { ns, svc } = await subject();
    const { rec } = recorder({ maxEntries: 2 });
    await rec.event(svc, 'Normal', 'R', 'one');
    await rec.event(svc, 'Normal', 'R', 'two');
    await rec.event(svc, 'Normal', 'R', 'one'); // one is now the most recent
    await rec.event(svc, 'Normal', 'R', 'three'); // evicts two
    expect(rec.size).toBe(2);
    await rec.event(svc, 'Normal', 'R', 'one'); // remembered: patched
    await rec.event(svc, 'Normal', 'R', 'two'); // forgotten: a new event
    const byMessage = (await events(ns)).map((e) => `${String(e.message)}:${String(e.count)}`).sort();
    expect(byMessage).toEqual(['one:3', 'three:1', 'two:1', 'two:1']);
    expect(rec.size).toBe(2);
  });

  it('keeps memory bounded under many distinct events', async () => {
    const kube = new FaultyKube(client);
    const { ns, svc } = await subject();
    const { rec } = recorder({ kube, maxEntries: 16 });
    for (let i = 0; i < 100; i++) await rec.event(svc, 'Normal', 'R', `m${i}`);
    await rec.flush();
    expect(rec.size).toBe(16);
    expect(await events(ns)).toHaveLength(100);
  });

  it('creates the event again when the one it would patch is gone (TTL)', async () => {
    const { ns, svc } = await subject();
    const { rec } = recorder();
    await rec.event(svc, 'Normal', 'IPAllocated', 'x');
    const [first] = await events(ns);
    await client.delete(RESOURCES.events, first?.metadata.name ?? '', ns);
    await rec.event(svc, 'Normal', 'IPAllocated', 'x');
    const list = await events(ns);
    expect(list).toHaveLength(1);
    expect(list[0]?.count).toBe(1);
    expect(list[0]?.metadata.name).not.toBe(first?.metadata.name);
  });

  it('never throws: a failed write is logged, and the next occurrence tries again', async () => {
    const kube = new FaultyKube(client);
    const { ns, svc } = await subject();
    const { rec, logs } = recorder({ kube });
    kube.inject({ verb: 'create', resource: 'events', fault: { status: 500 } });
    await expect(rec.event(svc, 'Warning', 'AllocationFailed', 'pool full')).resolves.toBeUndefined();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/event AllocationFailed on .*\/web: .*injected HTTP 500/);
    await rec.event(svc, 'Warning', 'AllocationFailed', 'pool full');
    kube.inject({ verb: 'patch', resource: 'events', fault: { status: 503 } });
    await rec.event(svc, 'Warning', 'AllocationFailed', 'pool full');
    await rec.event(svc, 'Warning', 'AllocationFailed', 'pool full');
    const list = await events(ns);
    expect(list).toHaveLength(1);
    expect(list[0]?.count).toBe(2);
    expect(logs).toHaveLength(2);
    // Even an object without metadata does not throw.
    await expect(rec.event({} as KubeObject, 'Normal', 'R', 'm')).resolves.toBeUndefined();
  });

  it('puts events about cluster-scoped objects in the configured namespace', async () => {
    const { ns } = await subject();
    const { rec } = recorder({ namespace: ns });
    await rec.event({ apiVersion: 'metallb.io/v1beta1', kind: 'IPClaim', metadata: { name: '192.0.2.7', uid: 'u-1' } }, 'Warning', 'OrphanClaim', 'no holder');
    const [ev] = await events(ns);
    expect(ev).toMatchObject({ involvedObject: { kind: 'IPClaim', name: '192.0.2.7', namespace: ns, uid: 'u-1' }, reason: 'OrphanClaim' });
  });
});
