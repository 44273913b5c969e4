/**
 * What core/announce costs an agent at 10,000 layer-2 Services on 100 nodes: the recomputation
 * after one Service or EndpointSlice event (one Service), and after a membership change or a
 * Node added or deleted (every Service), with the hash orders of the previous context reused or
 * carried over, or computed afresh. Figures are CPU time (user + system) of this process, the
 * median of 7 rounds. Not part of `npm run bench`; run it alone:
 *
 *   npm run build && node dist/test/bench/announce.js [services] [nodes]
 *
 * The Services: 70% IPv4 Cluster, 20% IPv4 Local with endpoints on 3 nodes, 10% dual-stack
 * Cluster; every 50th pair of IPv4 Services shares an address. Two L2Advertisements split the
 * nodes by zone, one with a preferred rack. Then BGP on the same Services and nodes: two
 * BGPAdvertisements (one per zone, one aggregating to /24) and a peer per rack (prepareBGP,
 * announceAllBGP, one Service, a node's route table).
 */
import type { BGPPeer, Config, L2Advertisement, Pool } from '../../core/config/types.js';
import { bgpAdvertisement } from '../../core/announce/testing.js';
import { emptyConfig } from '../../core/config/index.js';
import { formatIP, parseRange } from '../../core/ip/index.js';
import {
  announceAll,
  announceAllBGP,
  announceBGP,
  announcedBy,
  announceLayer2,
  bgpRoutes,
  prepareBGP,
  prepareLayer2,
  ServicesByIP,
  type AnnounceNode,
  type AnnounceService,
  type Layer2Context,
} from '../../core/announce/index.js';

const SERVICES = Number(process.argv[2] ?? 10_000);
const NODES = Number(process.argv[3] ?? 100);
const ROUNDS = 7;

function range(text: string): Pool['ranges'][number] {
  const r = parseRange(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

const ad = (name: string, fields: Partial<L2Advertisement>): L2Advertisement => ({
  name,
  origin: { kind: 'L2Advertisement', namespace: 'metallb-system', name },
  ipAddressPools: [],
  ipAddressPoolSelectors: [],
  nodeSelectors: [],
  preferredNodeSelectors: [],
  interfaces: [],
  ...fields,
});

const config: Config = {
  ...emptyConfig(),
  pools: [
    {
      name: 'bench',
      origin: { kind: 'IPAddressPool', namespace: 'metallb-system', name: 'bench' },
      labels: {},
      ranges: [range('10.0.0.0/8'), range('2001:db8::/64')],
      autoAssign: true,
      avoidBuggyIPs: false,
    },
  ],
  l2Advertisements: [
    ad('east', {
      nodeSelectors: [{ matchLabels: { zone: 'east' }, matchExpressions: [] }],
      interfaces: ['eth0'],
      preferredNodeSelectors: [{ weight: 50, preference: { matchLabels: { rack: 'r1' }, matchExpressions: [] } }],
    }),
    ad('west', { nodeSelectors: [{ matchLabels: { zone: 'west' }, matchExpressions: [] }] }),
  ],
};

const nodes: AnnounceNode[] = Array.from({ length: NODES }, (_, i) => ({
  name: `worker-${String(i).padStart(3, '0')}`,
  labels: { 'kubernetes.io/hostname': `worker-${i}`, zone: i % 2 === 0 ? 'east' : 'west', rack: `r${i % 4}` },
  networkUnavailable: false,
}));
const everyone = new Set(nodes.map((n) => n.name));

const v4 = (i: number): string => formatIP({ family: 'IPv4', value: 0x0a000000n + BigInt(i) + 1n });
const v6 = (i: number): string => formatIP({ family: 'IPv6', value: 0x20010db8000000000000000000000000n + BigInt(i) + 1n });

const services: AnnounceService[] = Array.from({ length: SERVICES }, (_, i) => {
  const kind = i % 10;
  // Every 50th Service shares the address of the one before it.
  const ip = i % 50 === 1 ? v4(i - 1) : v4(i);
  const onNodes = [i % NODES, (i * 7 + 3) % NODES, (i * 13 + 5) % NODES];
  return {
    namespace: `ns-${i % 100}`,
    name: `svc-${i}`,
    ips: kind === 9 ? [ip, v6(i)] : [ip],
    trafficPolicy: kind === 7 || kind === 8 ? 'Local' : 'Cluster',
    endpoints: onNodes.map((n) => ({ nodeName: nodes[n]!.name, ready: true, serving: true, terminating: false })),
  };
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/** CPU milliseconds (user + system) of `what`: on a shared machine, wall time mostly measures the neighbours. */
function time(what: () => void): number {
  const start = process.cpuUsage();
  what();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const index = new ServicesByIP();
for (const s of services) index.set(s);
const recomputeAll = (ctx: Layer2Context): void => {
  for (const s of services) announceLayer2(ctx, s, index.withIP);
};

const prepare: number[] = [];
const cold: number[] = [];
const oneService: number[] = [];
const dying: number[] = [];
const dyingCold: number[] = [];
const nodeAdded: number[] = [];
const nodeRemoved: number[] = [];
let owned = 0;
for (let round = 0; round < ROUNDS; round++) {
  let ctx!: Layer2Context;
  prepare.push(time(() => (ctx = prepareLayer2(config, nodes, everyone))));
  cold.push(time(() => recomputeAll(ctx)));

  // A Service event: that Service (and the ones sharing its addresses) again.
  const sample = services.filter((_, i) => i % 10 === round % 10);
  oneService.push(
    time(() => {
      for (const s of sample) announceLayer2(ctx, s, index.withIP);
    }) / sample.length,
  );

  // A node dies: a new context from the previous one, then every Service.
  const alive = new Set(everyone);
  alive.delete(nodes[round]!.name);
  dying.push(
    time(() => {
      const next = prepareLayer2(config, nodes, alive, { previous: ctx });
      recomputeAll(next);
      ctx = next;
    }),
  );
  dyingCold.push(time(() => recomputeAll(prepareLayer2(config, nodes, alive))));

  // A Node object is added, then another deleted: the node names change, the orders are carried.
  const grown = [...nodes, { name: `worker-new-${round}`, labels: { zone: 'east', rack: 'r1' }, networkUnavailable: false }];
  const grownAlive = new Set(grown.map((n) => n.name));
  nodeAdded.push(
    time(() => {
      const next = prepareLayer2(config, grown, grownAlive, { previous: ctx });
      recomputeAll(next);
      ctx = next;
    }),
  );
  nodeRemoved.push(
    time(() => {
      const next = prepareLayer2(config, nodes, everyone, { previous: ctx });
      recomputeAll(next);
      ctx = next;
    }),
  );
  owned = announcedBy(nodes[NODES - 1]!.name, announceAll(ctx, services)).length;
}

const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
const perService = (ms: number): string => `${((ms * 1000) / SERVICES).toFixed(2)} µs/Service`;
console.log(`core/announce layer 2: ${SERVICES} Services (10% dual-stack, 20% Local), ${NODES} nodes, median of ${ROUNDS}`);
console.log(`  prepareLayer2 (config, nodes, alive)                 ${median(prepare).toFixed(2)} ms`);
console.log(`  every Service, hash orders not yet computed          ${median(cold).toFixed(0)} ms  (${perService(median(cold))})`);
console.log(`  one Service event (warm)                             ${us(median(oneService))} per Service`);
console.log(`  a node dies: prepare from previous + every Service   ${median(dying).toFixed(0)} ms  (${perService(median(dying))})`);
console.log(`  the same without the previous context                ${median(dyingCold).toFixed(0)} ms  (${perService(median(dyingCold))})`);
console.log(`  a Node is added: prepare from previous + every Service ${median(nodeAdded).toFixed(0)} ms  (${perService(median(nodeAdded))})`);
console.log(`  a Node is deleted: the same                         ${median(nodeRemoved).toFixed(0)} ms  (${perService(median(nodeRemoved))})`);
console.log(`  (CPU time; ${nodes[NODES - 1]!.name} announces ${owned} IPs)`);

// ---- BGP: the same Services and nodes, advertised to a ToR peer per rack ----

const bgpAd = bgpAdvertisement;
const tor = (rack: number): BGPPeer => ({
  name: `tor-r${rack}`,
  origin: { kind: 'BGPPeer', namespace: 'metallb-system', name: `tor-r${rack}` },
  myASN: 64512,
  peerASN: 64512 + (rack % 2),
  peerAddress: { family: 'IPv4', value: 0xc0000201n + BigInt(rack) },
  peerPort: 179,
  holdTime: 90,
  keepaliveTime: 30,
  connectTime: 120,
  nodeSelectors: [{ matchLabels: { rack: `r${rack}` }, matchExpressions: [] }],
  ebgpMultiHop: false,
  enableGracefulRestart: false,
});
const bgpConfig: Config = {
  ...config,
  l2Advertisements: [],
  peers: [0, 1, 2, 3].map(tor),
  bgpAdvertisements: [
    bgpAd('east', { nodeSelectors: [{ matchLabels: { zone: 'east' }, matchExpressions: [] }], localPref: 100, communities: [{ kind: 'standard', asn: 64512, value: 1 }] }),
    bgpAd('west-24', { nodeSelectors: [{ matchLabels: { zone: 'west' }, matchExpressions: [] }], aggregationLength: 24 }),
  ],
};

const bgpPrepare: number[] = [];
const bgpAll: number[] = [];
const bgpOne: number[] = [];
const bgpTable: number[] = [];
let rows = 0;
for (let round = 0; round < ROUNDS; round++) {
  let ctx!: ReturnType<typeof prepareBGP>;
  bgpPrepare.push(time(() => (ctx = prepareBGP(bgpConfig, nodes, everyone))));
  let answers!: ReturnType<typeof announceAllBGP>;
  bgpAll.push(time(() => (answers = announceAllBGP(ctx, services))));
  const sample = services.filter((_, i) => i % 10 === round % 10);
  bgpOne.push(
    time(() => {
      for (const s of sample) announceBGP(ctx, s);
    }) / sample.length,
  );
  bgpTable.push(time(() => (rows = bgpRoutes(answers, { node: nodes[round]!.name }).length)));
}
console.log(`core/announce BGP: the same Services and nodes, 2 BGPAdvertisements, 4 peers (one per rack), median of ${ROUNDS}`);
console.log(`  prepareBGP (config, nodes, alive)                    ${median(bgpPrepare).toFixed(2)} ms`);
console.log(`  every Service                                        ${median(bgpAll).toFixed(0)} ms  (${perService(median(bgpAll))})`);
console.log(`  one Service event                                    ${us(median(bgpOne))} per Service`);
console.log(`  one node's route table (bgpRoutes, node filter)      ${median(bgpTable).toFixed(0)} ms  (${rows} routes)`);
