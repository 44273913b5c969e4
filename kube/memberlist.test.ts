/** ensureMemberlistSecret against the API server double: made once with a random key, never overwritten, races settle on one key. */
import { startApiServer, type ApiServer } from '../test/apiserver/index.js';
import { kubeConfigFor } from '../test/apiserver/testing.js';
import { ClientKube, RESOURCES } from './client.js';
import { ensureMemberlistSecret, MEMBERLIST_SECRET, MEMBERLIST_SECRET_KEY } from './memberlist.js';
import { FaultyKube } from './testing.js';

let api: ApiServer;
let client: ClientKube;
let n = 0;

beforeAll(async () => {
  api = await startApiServer({ tls: false });
  client = new ClientKube(kubeConfigFor(api));
});
afterAll(async () => {
  client.close();
  await api.stop();
});

async function namespace(): Promise<string> {
  const ns = `ml${++n}`;
  await api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as never);
  return ns;
}

const keyIn = async (ns: string) => {
  const s = await client.get(RESOURCES.secrets, MEMBERLIST_SECRET, ns);
  const data = (s?.data ?? {}) as Record<string, string>;
  return Buffer.from(data[MEMBERLIST_SECRET_KEY] ?? '', 'base64').toString('utf8');
};

test('creates the Secret memberlist with a random key under secretkey, once', async () => {
  const ns = await namespace();
  expect(await ensureMemberlistSecret(client, ns)).toBe(true);
  const key = await keyIn(ns);
  expect(Buffer.from(key, 'base64')).toHaveLength(32);
  expect(await ensureMemberlistSecret(client, ns)).toBe(false);
  expect(await keyIn(ns)).toBe(key);
  const other = await namespace();
  await ensureMemberlistSecret(client, other);
  expect(await keyIn(other)).not.toBe(key);
});

test("never touches an operator's Secret", async () => {
  const ns = await namespace();
  await client.create(RESOURCES.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: MEMBERLIST_SECRET, namespace: ns }, stringData: { secretkey: 'mine' } });
  expect(await ensureMemberlistSecret(client, ns)).toBe(false);
  expect(await keyIn(ns)).toBe('mine');
});

test('replicas racing end with one key; an API error rejects (the caller retries)', async () => {
  const ns = await namespace();
  const results = await Promise.all([ensureMemberlistSecret(client, ns), ensureMemberlistSecret(new ClientKube(kubeConfigFor(api)), ns)]);
  expect(results.filter(Boolean).length).toBeLessThanOrEqual(1);
  expect(Buffer.from(await keyIn(ns), 'base64')).toHaveLength(32);
  const faulty = new FaultyKube(client);
  faulty.inject({ verb: 'get', resource: 'secrets', fault: { status: 500 } });
  await expect(ensureMemberlistSecret(faulty, await namespace())).rejects.toMatchObject({ code: 500 });
});
