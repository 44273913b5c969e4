/**
 * `kubectl metallb pools | services | explain svc | simulate drain` end to end: the real kubectl
 * finds our executable on PATH (its plugin lookup), which reads the API server double where a real
 * controller assigned the Services (test/plugin/cluster.ts sets up every case), in every output
 * format; and the errors a user meets, each in one line.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { RESOURCES, type KubeObject } from '../../kube/client.js';
import { eventually, kubectl } from '../apiserver/testing.js';
import { kubeconfigYaml } from '../apiserver/kubeconfig.js';
import { lbService, NAMESPACE, repoRoot } from '../e2e/support.js';
import { L2STATUS, l2Status, NODES, nodeObject, POOLS, publishSession, runMetallb, SHOP, slice, SLICES, startPluginCluster, type PluginCluster } from './cluster.js';

let c: PluginCluster;

beforeAll(async () => {
  if (!existsSync(join(repoRoot, 'dist/plugin/bundle/main.cjs'))) throw new Error('run `npm run build` first');
  c = await startPluginCluster();
}, 120_000);

afterAll(async () => {
  await c?.stop();
}, 30_000);

const ok = async (...args: string[]) => {
  const out = await c.metallb(args);
  if (out.code !== 0) throw new Error(`kubectl metallb ${args.join(' ')} exited ${out.code}: ${out.stderr}`);
  expect(out.stdout).not.toContain('\u001b['); // not a terminal: no colour
  return out;
};

/** The table's rows as arrays of cells (columns are three or more spaces apart). */
const rowsOf = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{3,}/));

describe('pools', () => {
  it('lists every pool, metallb.io objects and the legacy ConfigMap alike, sorted, counted as the controller counts', async () => {
    const out = await ok('pools');
    const rows = rowsOf(out.stdout);
    expect(rows[0]).toEqual(['NAME', 'SOURCE', 'PROTOCOL', 'AUTO-ASSIGN', 'SERVES', 'SIZE', 'USED', 'FREE', 'USED%', 'RANGES']);
    // lan: a /25 avoiding buggy IPs has 127 usable addresses (no .0); web, the dns pair (one IP) and local hold 3.
    expect(rows.slice(1)).toEqual([
      ['lan', 'IPAddressPool', 'layer2', 'yes', 'all', '127', '3', '124', '2.36%', '203.0.113.0/25'],
      ['legacy', 'ConfigMap', 'layer2', 'yes', 'all', '16', '1', '15', '6.25%', '192.0.2.0/28'],
      ['small', 'IPAddressPool', 'layer2', 'no', 'all', '1', '1', '0', '100%', '203.0.113.200/32'],
      ['v6', 'IPAddressPool', 'layer2', 'no', 'all', '2^64', '0', '2^64', '0%', '2001:db8:1::/64'],
    ]);
  });

  it('-v lists who holds each address, a shared one with all its holders', async () => {
    const out = await ok('pools', 'lan', '-v');
    expect(out.stdout).toMatch(/^lan: 3 of 127 addresses in use$/m);
    const web = await c.ipOf('web');
    const dns = await c.ipOf('dns-tcp');
    expect(out.stdout).toMatch(new RegExp(`^\\s+${web.replaceAll('.', '\\.')}\\s+-\\s+shop/web$`, 'm'));
    expect(out.stdout).toMatch(new RegExp(`^\\s+${dns.replaceAll('.', '\\.')}\\s+dns\\s+shop/dns-tcp, shop/dns-udp$`, 'm'));
  });

  it.each(['json', 'yaml'])('-o %s prints the data alone, with exact counts', async (format) => {
    const out = await ok('pools', '-v', '-o', format);
    const data = (format === 'json' ? JSON.parse(out.stdout) : parse(out.stdout)) as { configuration: { source: string }; pools: Record<string, unknown>[] };
    expect(data.configuration.source).toBe('current');
    expect(data.pools.map((p) => p.name)).toEqual(['lan', 'legacy', 'small', 'v6']);
    expect(data.pools[1]).toMatchObject({ name: 'legacy', source: 'ConfigMap', size: '16', used: '1', free: '15', protocols: ['layer2'], autoAssign: true });
    expect(data.pools[3]).toMatchObject({ name: 'v6', size: '18446744073709551616', display: { size: '2^64' } });
    expect(data.pools[0]?.addresses).toContainEqual({ ip: await c.ipOf('dns-tcp'), holders: ['shop/dns-tcp', 'shop/dns-udp'], sharingKey: 'dns' });
    expect(out.stderr).toBe('');
  });

  it('names the closest pools when the one asked for does not exist', async () => {
    const out = await c.metallb(['pools', 'lna']);
    expect(out.code).toBe(1);
    expect(out.stderr.trim()).toBe('error: pool "lna" not found; did you mean lan? (pools: lan, legacy, small, v6)');
  });
});

describe('services', () => {
  it('shows every LoadBalancer Service of a namespace with its state, and why the others are not ok', async () => {
    const out = await ok('services', '-n', SHOP);
    const rows = rowsOf(out.stdout.split('\n\n')[0] ?? '');
    expect(rows[0]).toEqual(['NAME', 'IPS', 'POOL', 'PROTOCOL', 'NODE', 'SHARING', 'STATUS']);
    const status = Object.fromEntries(rows.slice(1).map((r) => [r[0], r[r.length - 1]]));
    expect(status).toEqual({
      'dns-tcp': 'ok',
      'dns-udp': 'ok',
      filler: 'ok',
      full: 'pending',
      local: 'not announced',
      old: 'ok',
      thief: 'pending',
      web: 'ok',
    });
    const web = rows.find((r) => r[0] === 'web');
    expect(web?.slice(0, 4)).toEqual(['web', await c.ipOf('web'), 'lan', 'layer2']);
    expect(out.stdout).toMatch(/^shop\/full: pending: pool "small" is full: 1\/1 addresses in use; release a Service's address or add addresses/m);
    expect(out.stdout).toMatch(new RegExp(`^shop/thief: pending: ${(await c.ipOf('web')).replaceAll('.', '\\.')} is already in use by shop/web`, 'm'));
    expect(out.stdout).toMatch(/^shop\/local: not announced: no ready endpoint on any node/m);
  });

  it('svc -A adds the NAMESPACE column; -o json and yaml carry the same rows', async () => {
    const table = await ok('svc', '-A');
    expect(rowsOf(table.stdout)[0]?.[0]).toBe('NAMESPACE');
    const json = JSON.parse((await ok('svc', '-A', '-o', 'json')).stdout) as { namespace: string | null; services: { name: string; status: string; sharingKey: string | null }[] };
    const yaml = parse((await ok('services', '-A', '-o', 'yaml')).stdout) as typeof json;
    expect(yaml).toEqual(json);
    expect(json.namespace).toBeNull();
    expect(json.services.find((s) => s.name === 'dns-udp')).toMatchObject({ status: 'ok', sharingKey: 'dns', sharedWith: ['shop/dns-tcp'] });
  });

  it("takes the context's namespace without -n, and --kubeconfig/--context as kubectl does", async () => {
    const none = await ok('services');
    expect(none.stdout.trim()).toBe('No LoadBalancer Services found in namespace default.');
    const api = c.cluster.api;
    const other = join(api.dir, 'shop.kubeconfig');
    await writeFile(other, kubeconfigYaml({ server: api.url, token: api.token, ...(api.caPem ? { caPem: api.caPem } : {}), name: 'shop-context', namespace: SHOP }));
    const viaFlag = await c.metallb(['services', '--kubeconfig', other, '--context', 'shop-context']);
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stdout).toMatch(/^web\s/m);
    // Before the command, as kubectl users put global flags.
    const first = await c.metallb(['--kubeconfig', other, '--context=shop-context', '-o', 'json', 'services']);
    expect(first.code).toBe(0);
    expect((JSON.parse(first.stdout) as { namespace: string }).namespace).toBe(SHOP);
    // KUBECONFIG with two files: the first one's current context wins, the second's contexts are known.
    const merged = await runMetallb(`${c.cluster.api.kubeconfigPath}:${other}`, ['services', '--context', 'shop-context']);
    expect(merged.stdout).toMatch(/^web\s/m);
  });
});

describe('explain svc', () => {
  it('gives the verdict first for a healthy Service, then the evidence, agreeing with the agent that published its status', async () => {
    const owner = await c.ownerOf('web');
    await c.kube.create(L2STATUS, l2Status('web', owner));
    try {
      const out = await ok('explain', 'svc', 'web', '-n', SHOP);
      const lines = out.stdout.split('\n');
      expect(lines[0]).toBe(`shop/web: assigned ${await c.ipOf('web')} from pool lan, announced by ${owner} over layer 2`);
      expect(out.stdout).toMatch(/^ {2}pool: lan \(annotation metallb\.io\/address-pool\)$/m);
      expect(out.stdout).toMatch(/^ {2}lan\s+assigned\s+holds /m);
      expect(out.stdout).toMatch(/ready endpoints: 1 on node-1/);
      expect(out.stdout).toMatch(new RegExp(`announced by ${owner}, next node-\\d`));
      expect(out.stdout).toMatch(new RegExp(`^ {2}ServiceL2Status: ${owner}$`, 'm'));
      expect(out.stdout).not.toMatch(/The cluster shows otherwise/);
      expect(out.stdout).toMatch(/Normal\s+IPAllocated/);
    } finally {
      await c.kube.delete(L2STATUS, `${SHOP}.web.${owner}`, NAMESPACE);
    }
  });

  it('explain service is the same command', async () => {
    const a = await ok('explain', 'service', 'web', '-n', SHOP, '-o', 'json');
    const b = await ok('explain', 'svc', 'web', '-n', SHOP, '-o', 'json');
    const strip = (t: string) => ({ ...(JSON.parse(t) as Record<string, unknown>), readAt: null, events: null });
    expect(strip(a.stdout)).toEqual(strip(b.stdout));
  });

  it('pending because the pool is full: the allocator reason, the fix and the Warning event', async () => {
    const out = await ok('explain', 'svc', 'full', '-n', SHOP);
    expect(out.stdout.split('\n')[0]).toBe('shop/full: pending: pool "small" is full: 1/1 addresses in use');
    expect(out.stdout.split('\n')[1]).toBe("fix: release a Service's address or add addresses (kubectl metallb pools -v)");
    expect(out.stdout).toMatch(/^ {2}small\s+no\s+pool "small" is full/m);
    expect(out.stdout).toMatch(/Warning\s+AllocationFailed/);
  });

  it('pending because the requested address is held by another Service, named', async () => {
    const web = await c.ipOf('web');
    const out = await ok('explain', 'svc', 'thief', '-n', SHOP, '-o', 'json');
    const e = JSON.parse(out.stdout) as { status: string; verdict: string; fix: string; request: { requestedIPs: { value: string; from: string }[] } };
    expect(e.status).toBe('pending');
    expect(e.verdict).toBe(`pending: ${web} is already in use by shop/web`);
    expect(e.fix).toMatch(/request another address, or give both Services the same metallb\.io\/allow-shared-ip key/);
    expect(e.request.requestedIPs).toEqual([{ value: web, from: 'annotation metallb.io/loadBalancerIPs' }]);
  });

  it('a shared IP: the key, its partners and the announcing node they agree on', async () => {
    const out = await ok('explain', 'svc', 'dns-udp', '-n', SHOP, '-o', 'yaml');
    const e = parse(out.stdout) as { sharing: unknown; layer2: { owner: string }[] };
    expect(e.sharing).toEqual({ key: 'dns', partners: ['shop/dns-tcp'], sameIP: ['shop/dns-tcp'] });
    const tcp = parse((await ok('explain', 'svc', 'dns-tcp', '-n', SHOP, '-o', 'yaml')).stdout) as typeof e;
    expect(e.layer2[0]?.owner).toMatch(/^node-\d$/);
    expect(tcp.layer2[0]?.owner).toBe(e.layer2[0]?.owner);
  });

  it('Local policy with no ready endpoint on any node: not announced, with the fix', async () => {
    const out = await ok('explain', 'svc', 'local', '-n', SHOP);
    expect(out.stdout.split('\n')[0]).toMatch(/^shop\/local: assigned 203\.0\.113\.\d+ from pool lan but not announced: no ready endpoint on any node/);
    expect(out.stdout).toMatch(/^fix: make the Service's pods ready \(kubectl -n shop get endpointslices -l kubernetes\.io\/service-name=local\)$/m);
    expect(out.stdout).toMatch(/externalTrafficPolicy Local: only nodes with a ready endpoint may announce/);
    expect(out.stdout).toMatch(/^ {4}node-2: no ready endpoint$/m);
  });

  it('a pool from the legacy ConfigMap, asked for with the deprecated annotation name', async () => {
    const e = JSON.parse((await ok('explain', 'svc', 'old', '-n', SHOP, '-o', 'json')).stdout) as {
      pool: string;
      request: { pool: { value: string; from: string; deprecated: boolean } };
    };
    expect(e.pool).toBe('legacy');
    expect(e.request.pool).toEqual({ value: 'legacy', from: 'annotation metallb.universe.tf/address-pool (deprecated: use metallb.io/address-pool)', deprecated: true });
  });

  it('an agent down: the address moves to the next candidate, and explain says the status still names the old owner', async () => {
    const owner = await c.ownerOf('web');
    await c.kube.create(L2STATUS, l2Status('web', owner));
    await c.kube.patch(NODES, owner, undefined, { status: nodeObject(owner, false).status }, { subresource: 'status' });
    try {
      const next = await c.ownerOf('web');
      expect(next).not.toBe(owner);
      const out = await ok('explain', 'svc', 'web', '-n', SHOP);
      expect(out.stdout.split('\n')[0]).toMatch(new RegExp(`announced by ${next} over layer 2$`));
      expect(out.stdout).toMatch(new RegExp(`^ {4}${owner}: not Ready$`, 'm'));
      expect(out.stdout).toMatch(new RegExp(`ServiceL2Status says ${owner} announces it \\(node ${owner} is not Ready\\), but ${next} should`));
      const svc = await ok('services', '-n', SHOP);
      expect(svc.stdout).toMatch(new RegExp(`^web .* ${next} \\(status: ${owner}\\) `, 'm'));
      // Draining the new owner too leaves the third node, unless the drained node hosted web's only endpoint.
      const drain = JSON.parse((await ok('simulate', 'drain', next, '-o', 'json')).stdout) as { moves: { service: string; to: string | null; reason: string | null }[] };
      const move = drain.moves.find((m) => m.service === 'shop/web');
      if (next === 'node-1') expect(move).toMatchObject({ to: null, reason: expect.stringMatching(/no ready endpoint/) });
      else expect(move?.to).toBe(['node-1', 'node-2', 'node-3'].find((n) => n !== owner && n !== next));
    } finally {
      await c.kube.patch(NODES, owner, undefined, { status: nodeObject(owner, true).status }, { subresource: 'status' });
      await c.kube.delete(L2STATUS, `${SHOP}.web.${owner}`, NAMESPACE);
    }
  });

  it.each([
    [['explain', 'svc', 'wbe', '-n', SHOP], 'error: service "wbe" not found in namespace shop; did you mean web?'],
    [['explain', 'svc', 'web'], 'error: service "web" not found in namespace default; it exists in namespace shop (use -n)'],
    [['explain', 'svc', 'db', '-n', SHOP], 'error: shop/db is a ClusterIP Service: MetalLB gives addresses only to Services of type LoadBalancer'],
  ])('kubectl metallb %j fails in one line', async (args, message) => {
    const out = await c.metallb(args);
    expect(out.code).toBe(1);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    if (typeof message === 'string') expect(out.stderr.trim()).toBe(message);
    else expect(out.stderr.trim()).toMatch(message);
  });
});

describe('simulate drain', () => {
  it('moves each address the node announces to the next candidate (table and yaml)', async () => {
    const owner = await c.ownerOf('web');
    const out = await ok('simulate', 'drain', owner);
    expect(out.stdout).toMatch(new RegExp(`^If ${owner} went away`));
    expect(out.stdout).toMatch(new RegExp(`^shop/web\\s+${(await c.ipOf('web')).replaceAll('.', '\\.')}\\s+node-\\d$`, 'm'));
    const data = parse((await ok('simulate', 'drain', owner, '-o', 'yaml')).stdout) as { node: string; moves: unknown[] };
    expect(data.node).toBe(owner);
    expect(data.moves.length).toBeGreaterThan(0);
    const unknown = await c.metallb(['simulate', 'drain', 'node-9']);
    expect(unknown.stderr.trim()).toBe('error: node "node-9" not found; did you mean node-1, node-2, node-3? (kubectl get nodes)');
  });
});

describe('peers', () => {
  it('every node x peer session: established, down with its error, or unknown; a summary; --node; as data', async () => {
    const peer = `apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: tor\n  namespace: ${NAMESPACE}\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 192.0.2.254\n`;
    expect((await kubectl(c.cluster.api, ['apply', '-f', '-'], peer)).code).toBe(0);
    const since = new Date(Date.now() - 5 * 60_000).toISOString();
    await publishSession(c.kube, 'node-1', '192.0.2.254', {
      bgpStatus: 'Established',
      lastTransitionTime: since,
      prefixesSent: 5,
      prefixesReceived: 0,
      holdTime: '90s',
      bfdStatus: 'no BFD configured',
    });
    await publishSession(c.kube, 'node-2', '192.0.2.254', { bgpStatus: 'Active', lastTransitionTime: since, lastError: 'dial tcp 192.0.2.254:179: connect: connection refused' });

    const out = await ok('peers');
    const rows = rowsOf(out.stdout.split('\n\n')[0] ?? '');
    expect(rows[0]).toEqual(['NODE', 'PEER', 'ADDRESS', 'ASN', 'STATE', 'SENT', 'RECEIVED', 'HOLD', 'BFD', 'LAST ERROR']);
    expect(rows.slice(1)).toEqual([
      ['node-1', 'tor', '192.0.2.254', '64501', 'Established for 5m', '5', '0', '90s', 'no BFD configured', '-'],
      ['node-2', 'tor', '192.0.2.254', '64501', 'Active since 5m', '-', '-', '-', '-', 'dial tcp 192.0.2.254:179: connect: connection refused'],
      ['node-3', 'tor', '192.0.2.254', '64501', 'unknown (no status published)', '-', '-', '-', '-', '-'],
    ]);
    expect(out.stdout.trim().split('\n').pop()).toBe('1 of 3 sessions established');

    const one = JSON.parse((await ok('peers', '--node', 'node-2', '-o', 'json')).stdout) as { sessions: Record<string, unknown>[]; established: number; total: number };
    expect(one).toMatchObject({ established: 0, total: 1, sessions: [{ node: 'node-2', peer: 'tor', state: 'Active', lastError: expect.stringMatching(/connection refused/) }] });
    const yaml = parse((await ok('peers', '-o', 'yaml')).stdout) as { total: number };
    expect(yaml.total).toBe(3);
    expect((await c.metallb(['peers', '--node', 'node-9'])).stderr.trim()).toMatch(/^error: node "node-9" not found; did you mean node-1, node-2, node-3\?/);
  });
});

describe('a bad configuration', () => {
  it('is kept out by the webhook, and the pools stay as they were', async () => {
    const bad = `apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: broken\n  namespace: ${NAMESPACE}\nspec:\n  addresses: ["203.0.113.0/33"]\n`;
    const applied = await kubectl(c.cluster.api, ['apply', '-f', '-'], bad);
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toMatch(/denied the request/);
    const out = await ok('pools', '-o', 'json');
    expect((JSON.parse(out.stdout) as { pools: { name: string }[] }).pools.map((p) => p.name)).toEqual(['lan', 'legacy', 'small', 'v6']);
  });

  it('that landed anyway (webhook down): the commands use the last good one and say so', async () => {
    // Past the webhook, as while it is down: overlaps pool lan.
    await c.cluster.api.store.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'overlap', namespace: NAMESPACE },
      spec: { addresses: ['203.0.113.0/26'] },
    } as KubeObject);
    try {
      const out = await ok('pools');
      expect(out.stderr).toMatch(
        /^warning: the current configuration has \d+ errors? \(.*overlap.*\); MetalLB keeps running on the last good configuration, shown here; kubectl metallb config check$/m,
      );
      expect(rowsOf(out.stdout).map((r) => r[0])).toEqual(['NAME', 'lan', 'legacy', 'small', 'v6']);
      const e = JSON.parse((await ok('explain', 'svc', 'web', '-n', SHOP, '-o', 'json')).stdout) as { status: string; configuration: { source: string; errors: string[] } };
      expect(e.status).toBe('ok');
      expect(e.configuration.source).toBe('last-good');
      expect(e.configuration.errors.join('\n')).toMatch(/overlap/);
    } finally {
      await c.kube.delete(POOLS, 'overlap', NAMESPACE);
    }
  });
});

describe('errors and help', () => {
  it('an unknown command lists the commands and suggests the closest, as typed', async () => {
    const out = await c.metallb(['explain', 'pod', 'web']);
    expect(out.code).toBe(1);
    expect(out.stderr.trim()).toBe(
      'error: unknown command "explain pod web" for "kubectl metallb"; did you mean "explain svc"? (commands: config check, config convert, explain svc, peers, pools, services, simulate drain; kubectl metallb --help)',
    );
    expect((await c.metallb(['pool'])).stderr).toMatch(/^error: unknown command "pool" for "kubectl metallb"; did you mean "pools"\?/);
  });

  it('an unreachable cluster', async () => {
    const dead = join(c.cluster.api.dir, 'dead.kubeconfig');
    await writeFile(dead, kubeconfigYaml({ server: 'https://127.0.0.1:1', token: 'x', name: 'dead' }));
    const out = await runMetallb(dead, ['pools']);
    expect(out.code).toBe(1);
    expect(out.stderr.trim()).toBe(
      'error: cannot reach the cluster at https://127.0.0.1:1 (context dead): connection refused; is it running, and is --context/--kubeconfig right?',
    );
  });

  it('missing permissions name the verb and the resource', async () => {
    const fault = c.cluster.api.faults.inject({ verb: 'list', resource: 'ipclaims', count: Infinity, fault: { status: 403 } });
    try {
      const out = await c.metallb(['pools']);
      expect(out.code).toBe(1);
      expect(out.stderr.trim().split('\n')).toHaveLength(1);
      expect(out.stderr).toMatch(/^error: forbidden: you may not list ipclaims\.metallb\.io at the cluster scope \(context metallb-ts-double\); ask for RBAC that allows it/);
      // peers shows sessions: it needs no IPClaim (the largest list), and does not read them.
      const peers = await c.metallb(['peers', '-o', 'json']);
      expect({ code: peers.code, stderr: peers.stderr }).toEqual({ code: 0, stderr: '' });
    } finally {
      fault.remove();
    }
  });

  it('without permission to list BGPSessionStates, services and explain still answer (sessions unknown) and say so; peers, which shows nothing else, fails', async () => {
    const fault = c.cluster.api.faults.inject({ verb: 'list', resource: 'bgpsessionstates', count: Infinity, fault: { status: 403 } });
    try {
      for (const args of [
        ['services', '-n', SHOP],
        ['explain', 'svc', 'web', '-n', SHOP],
        ['simulate', 'drain', 'node-1'],
      ]) {
        const out = await c.metallb(args);
        expect({ args, code: out.code }).toEqual({ args, code: 0 });
        expect(out.stdout).not.toBe('');
        expect(out.stderr).toBe(`warning: you may not list bgpsessionstates.metallb.io in namespace ${NAMESPACE}: BGP sessions are shown as unknown\n`);
      }
      const json = await c.metallb(['services', '-n', SHOP, '-o', 'json']);
      expect(() => JSON.parse(json.stdout) as unknown).not.toThrow();
      const peers = await c.metallb(['peers']);
      expect(peers.code).toBe(1);
      expect(peers.stderr).toMatch(/^error: forbidden: you may not list bgpsessionstates\.metallb\.io in namespace metallb-system/);
    } finally {
      fault.remove();
    }
  });

  it('an API server that fails a list, or does not answer: one line naming what, and no partial answer', async () => {
    const failing = c.cluster.api.faults.inject({ verb: 'list', resource: 'endpointslices', count: Infinity, fault: { status: 500, message: 'etcdserver: leader changed' } });
    try {
      const out = await c.metallb(['services', '-n', SHOP]);
      expect(out.code).toBe(1);
      expect(out.stdout).toBe('');
      expect(out.stderr.trim().split('\n')).toHaveLength(1);
      expect(out.stderr).toMatch(/^error: .*endpointslices.*etcdserver: leader changed/);
    } finally {
      failing.remove();
    }
    const hanging = c.cluster.api.faults.inject({ verb: 'list', resource: 'ipclaims', count: Infinity, fault: { hang: true } });
    try {
      const started = Date.now();
      const out = await c.metallb(['pools', '--request-timeout', '1s']);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(out.code).toBe(1);
      expect(out.stdout).toBe('');
      expect(out.stderr.trim().split('\n')).toHaveLength(1);
      expect(out.stderr).toMatch(/^error: .*ipclaims/);
    } finally {
      hanging.remove();
    }
  });

  it('an unknown context, a missing kubeconfig', async () => {
    expect((await c.metallb(['pools', '--context', 'nope'])).stderr.trim()).toBe('error: context "nope" does not exist in the kubeconfig (contexts: metallb-ts-double)');
    expect((await c.metallb(['pools', '--kubeconfig', '/nonexistent'])).stderr.trim()).toBe('error: kubeconfig /nonexistent does not exist (--kubeconfig)');
  });

  it.each([['pools'], ['services'], ['explain', 'svc'], ['simulate', 'drain'], ['peers']])('kubectl metallb %j --help shows examples', async (...cmd) => {
    const out = await ok(...cmd, '--help');
    expect(out.stdout).toMatch(/EXAMPLES/);
    expect(out.stdout).toMatch(/kubectl metallb /);
    expect(out.stdout).toMatch(/--context/);
  });

  it("shell completion through kubectl's plugin completion (kubectl_complete-metallb)", async () => {
    const complete = (...words: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          'kubectl',
          ['__complete', 'metallb', ...words],
          { env: { ...process.env, PATH: `${join(repoRoot, 'plugin/bin')}:${process.env.PATH ?? ''}`, KUBECONFIG: c.cluster.api.kubeconfigPath, NODE_OPTIONS: '' } },
          (err, stdout) => (err ? reject(err) : resolve(stdout)),
        ),
      );
    expect(await complete('ex')).toBe('explain\n:4\n');
    expect(await complete('explain', 'svc', '-n', SHOP, 'w')).toBe('web\n:4\n');
    expect(await complete('simulate', 'drain', '')).toBe('node-1\nnode-2\nnode-3\n:4\n');
  });

  it('on a terminal: colour and the usage bar; with NO_COLOR there, none', async () => {
    // `script` gives the command a pseudo-terminal, as a user's shell would.
    const onTerminal = (command: string, extra: Record<string, string> = {}) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          'script',
          ['-qec', command, '/dev/null'],
          {
            env: {
              ...process.env,
              PATH: `${join(repoRoot, 'plugin/bin')}:${process.env.PATH ?? ''}`,
              KUBECONFIG: c.cluster.api.kubeconfigPath,
              NODE_OPTIONS: '',
              TERM: 'xterm',
              ...extra,
            },
          },
          (err, stdout) => (err ? reject(err) : resolve(stdout)),
        ),
      );
    const services = await onTerminal(`kubectl metallb services -n ${SHOP}`);
    expect(services).toContain('\u001b[1mNAME');
    expect(services).toContain('\u001b[32m   ok\u001b[39m');
    const pools = await onTerminal('kubectl metallb pools');
    expect(pools).toMatch(/\[#*\.*\]/);
    expect(await onTerminal(`kubectl metallb services -n ${SHOP}`, { NO_COLOR: '1' })).not.toContain('\u001b[');
  });

  it('NO_COLOR and a pipe: no escape codes', async () => {
    const out = await c.metallb(['services', '-n', SHOP], { NO_COLOR: '1', FORCE_COLOR: '1' });
    expect(out.stdout).not.toContain('\u001b[');
  });
});

describe('a Service advertised over BGP', () => {
  // After `peers` (its BGPPeer tor at 192.0.2.254: node-1 Established, node-2 Active with an error,
  // node-3 unpublished) and last in the file: it adds a pool the earlier tests do not expect.
  it('services, explain and simulate drain show the advertising nodes, the routes and the sessions', async () => {
    const yaml = [
      `apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: routed\n  namespace: ${NAMESPACE}\nspec:\n  addresses: ["198.51.100.16/28"]\n  autoAssign: false\n`,
      `apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: routed\n  namespace: ${NAMESPACE}\nspec:\n  ipAddressPools: [routed]\n  communities: ["64500:7"]\n`,
    ].join('---\n');
    const applied = await kubectl(c.cluster.api, ['apply', '-f', '-'], yaml);
    expect(applied.stderr).toBe('');
    // The webhook learns of the new pool from its watch: until then it refuses the Service, by name.
    await eventually(
      () =>
        c.kube.create(RESOURCES.services, lbService('routed-web', SHOP, { annotations: { 'metallb.io/address-pool': 'routed' } }) as KubeObject).then(
          () => true,
          (e: Error) => (/pool "routed" does not exist/.test(e.message) ? false : Promise.reject(e)),
        ),
      10_000,
      'the webhook to know pool routed',
    );
    await c.kube.create(SLICES, slice('routed-web', [{ node: 'node-3', ready: true }]));
    const ip = await c.ipOf('routed-web');
    expect(ip).toMatch(/^198\.51\.100\.(1[6-9]|2\d|3[01])$/);

    // The L2Advertisement "everywhere" selects every pool: the address is on layer 2 too (one
    // owner, no agent here to publish its ServiceL2Status) and over BGP from every node (ECMP);
    // one of the three sessions is up.
    const owner = await c.ownerOf('routed-web');
    const rows = JSON.parse((await ok('services', '-n', SHOP, '-o', 'json')).stdout) as { services: Record<string, unknown>[] };
    const row = rows.services.find((r) => r.name === 'routed-web');
    expect(row).toMatchObject({ protocols: ['layer2', 'bgp'], announcingNodes: [owner], advertisingNodes: ['node-1', 'node-2', 'node-3'], bgpPeers: ['tor'], status: 'ok' });
    const verdict = `${ip} from pool routed, announced by ${owner} over layer 2; advertised over BGP by node-1, node-2, node-3 to tor (1 of 3 sessions established)`;
    expect(row?.reason).toBe(verdict);
    const table = rowsOf((await ok('services', '-n', SHOP)).stdout.split('\n\n')[0] ?? '').find((r) => r[0] === 'routed-web');
    expect(table).toEqual(['routed-web', ip, 'routed', 'layer2+bgp', `${owner} (status: none); bgp node-1,node-2,node-3`, '-', 'ok']);

    const explained = (await ok('explain', 'svc', '-n', SHOP, 'routed-web')).stdout;
    expect(explained.split('\n')[0]).toBe(`${SHOP}/routed-web: assigned ${verdict}`);
    expect(explained).toContain(`${ip}/32 to tor, communities 64500:7 from node-1, node-2, node-3`);
    expect(explained).toMatch(/the BGP session from node-2 to tor is Active \(dial tcp 192\.0\.2\.254:179: connect: connection refused\)/);

    const drain = JSON.parse((await ok('simulate', 'drain', 'node-1', '-o', 'json')).stdout) as { withdrawn: unknown[] };
    expect(drain.withdrawn).toContainEqual({ prefix: `${ip}/32`, peer: 'tor', services: [`${SHOP}/routed-web`], stillFrom: ['node-2', 'node-3'] });
    const drawn = (await ok('simulate', 'drain', 'node-1')).stdout;
    expect(drawn).toMatch(new RegExp(`^${ip.replaceAll('.', '\\.')}/32\\s+tor\\s+${SHOP}/routed-web\\s+node-2,node-3$`, 'm'));
  });
});
