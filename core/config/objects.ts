/**
 * Readers for the objects both sources share (BFD profiles, BGP peers, advertisement tuning,
 * address lists). The ConfigMap spells fields in kebab-case and the CRDs in camelCase; the rules
 * are the same, so they live here once.
 */
import { FAMILY_BITS, formatIP, networkOf, parseIP, parseRange, type IP, type IPRange } from '../ip/index.js';
import { formatSeconds, parseDuration } from './duration.js';
import type { Ref } from './declarations.js';
import { at, describe, type Fields, type Reader } from './read.js';
import { readSelectors, type Spelling } from './selector.js';
import type { BFDProfile, BGPPeer, LabelSelector, Origin, SecretRef } from './types.js';

/** 4-byte ASNs (RFC 6793); 0 is reserved. */
export const ASN_MAX = 4_294_967_295;
const U32_MAX = 4_294_967_295;

/** MetalLB's defaults (FRR's for BFD). */
export const DEFAULTS = {
  peerPort: 179,
  holdTime: 90,
  /** RFC 4271's suggested ConnectRetryTime; MetalLB leaves it to FRR, which uses the same. */
  connectTime: 120,
  aggregationLength: 32,
  aggregationLengthV6: 128,
  bfd: { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoInterval: 50, minimumTtl: 254 },
} as const;

const BFD_KEYS = {
  camel: ['receiveInterval', 'transmitInterval', 'detectMultiplier', 'echoInterval', 'echoMode', 'passiveMode', 'minimumTtl'],
  kebab: ['receive-interval', 'transmit-interval', 'detect-multiplier', 'echo-interval', 'echo-mode', 'passive-mode', 'minimum-ttl'],
} as const;

/** Read a BFD profile's settings from `m` (the CRD spec or the ConfigMap entry). Bounds are FRR's. */
export function readBFDProfile(r: Reader, m: Fields, path: string, spelling: Spelling, name: string, origin: Origin): BFDProfile {
  const [rx, tx, mult, echo, echoMode, passive, ttl] = BFD_KEYS[spelling];
  const d = DEFAULTS.bfd;
  return {
    name,
    origin,
    receiveInterval: r.int(m, rx, path, 10, 60000) ?? d.receiveInterval,
    transmitInterval: r.int(m, tx, path, 10, 60000) ?? d.transmitInterval,
    detectMultiplier: r.int(m, mult, path, 2, 255) ?? d.detectMultiplier,
    echoInterval: r.int(m, echo, path, 10, 60000) ?? d.echoInterval,
    echoMode: r.bool(m, echoMode, path) ?? false,
    passiveMode: r.bool(m, passive, path) ?? false,
    minimumTtl: r.int(m, ttl, path, 1, 254) ?? d.minimumTtl,
  };
}

/** The BFD profile fields, for the unknown-field check of each spelling. */
export function bfdKeys(spelling: Spelling): readonly string[] {
  return BFD_KEYS[spelling];
}

const PEER_KEYS = {
  kebab: {
    myASN: 'my-asn',
    peerASN: 'peer-asn',
    peerAddress: 'peer-address',
    peerPort: 'peer-port',
    sourceAddress: 'source-address',
    holdTime: 'hold-time',
    keepaliveTime: 'keepalive-time',
    routerID: 'router-id',
    nodeSelectors: 'node-selectors',
    password: 'password',
    bfdProfile: 'bfd-profile',
    ebgpMultiHop: 'ebgp-multihop',
  },
  camel: {
    myASN: 'myASN',
    peerASN: 'peerASN',
    peerAddress: 'peerAddress',
    peerPort: 'peerPort',
    sourceAddress: 'sourceAddress',
    holdTime: 'holdTime',
    keepaliveTime: 'keepaliveTime',
    routerID: 'routerID',
    nodeSelectors: 'nodeSelectors',
    password: 'password',
    bfdProfile: 'bfdProfile',
    ebgpMultiHop: 'ebgpMultiHop',
  },
} as const;

/** Fields only the BGPPeer CRD has. */
const PEER_CRD_ONLY = ['connectTime', 'passwordSecret', 'enableGracefulRestart', 'disableMP'] as const;

/** The release of metallb-ts that brings what the BGP speaker needs. */
export const BGP_SPEAKER_RELEASE = 'the BGP speaker release, 0.3';

/** MetalLB BGPPeer fields that need our BGP speaker; refused when set, saying when they come. */
export const PEER_UNSUPPORTED: Readonly<Record<string, string>> = Object.fromEntries(
  ['vrf', 'dynamicASN', 'interface', 'dualStackAddressFamily', 'localASN'].map((k) => [
    k,
    `is not supported yet: metallb-ts brings it with ${BGP_SPEAKER_RELEASE}; remove it until then`,
  ]),
);

/** The peer fields of each spelling; the CRD has a few the ConfigMap never had. */
export function peerKeys(spelling: Spelling): readonly string[] {
  const common: string[] = Object.values(PEER_KEYS[spelling]);
  return spelling === 'camel' ? [...common, ...PEER_CRD_ONLY] : common;
}

/** Where a peer's fields are written, for the checks across peers. */
export interface PeerPaths {
  myASN: string;
  peerAddress: string;
  routerID: string;
  bfdProfile: string;
}

/** A peer read from either source, with the places later checks point at. */
export interface PeerRead {
  peer: BGPPeer;
  paths: PeerPaths;
  /** Path of passwordSecret when set (CRD only): the caller resolves it against the Secrets. */
  secretPath?: string;
}

/**
 * Read a BGP peer. Returns undefined only when a field every session needs (ASNs, address) is
 * unusable; other errors are reported and the peer is returned with defaults in their place,
 * so that later checks (duplicates, BFD references) can still run on it.
 */
export function readPeer(r: Reader, m: Fields, path: string, spelling: Spelling, name: string, origin: Origin, namespace: string): PeerRead | undefined {
  const k = PEER_KEYS[spelling];
  // A peer found by dynamicASN or by interface (refused as not supported yet) has no peerASN or
  // peerAddress: one error for it is enough.
  const set = (key: string): boolean => spelling === 'camel' && m[key] !== undefined && m[key] !== null && m[key] !== '';
  const myASN = r.required(m, k.myASN, path, r.int(m, k.myASN, path, 1, ASN_MAX));
  const peerASNRead = r.int(m, k.peerASN, path, 1, ASN_MAX);
  const peerASN = set('dynamicASN') ? peerASNRead : r.required(m, k.peerASN, path, peerASNRead);
  const peerAddressRead = readIP(r, m, k.peerAddress, path);
  const peerAddress = set('interface') ? peerAddressRead : r.required(m, k.peerAddress, path, peerAddressRead);
  const peerPort = r.int(m, k.peerPort, path, 1, 65535) ?? DEFAULTS.peerPort;
  const sourceAddress = readIP(r, m, k.sourceAddress, path);
  const routerID = readIP(r, m, k.routerID, path);
  if (routerID && routerID.family !== 'IPv4') {
    r.fail(at(path, k.routerID), `router ID ${formatIP(routerID)} must be an IPv4 address (BGP identifiers are 32 bits)`);
  }
  if (sourceAddress && peerAddress && sourceAddress.family !== peerAddress.family) {
    r.fail(
      at(path, k.sourceAddress),
      `source address ${formatIP(sourceAddress)} is ${sourceAddress.family} but the peer address ${formatIP(peerAddress)} is ${peerAddress.family}`,
    );
  }
  const timers = readTimers(r, m, path, spelling);
  const nodeSelectors: LabelSelector[] = readSelectors(r, m[k.nodeSelectors], at(path, k.nodeSelectors), spelling);
  const password = r.string(m, k.password, path);
  if (password !== undefined && /[\r\n]/.test(password)) {
    r.fail(at(path, k.password), 'password must not contain line breaks');
  }
  const bfdProfile = r.string(m, k.bfdProfile, path);
  if (bfdProfile === '') r.fail(at(path, k.bfdProfile), 'must not be empty (leave it out to run without BFD)');
  const ebgpMultiHop = r.bool(m, k.ebgpMultiHop, path) ?? false;
  if (ebgpMultiHop && myASN !== undefined && myASN === peerASN) {
    r.fail(at(path, k.ebgpMultiHop), `ebgp multihop is set but this is an iBGP session (both ASNs are ${myASN})`);
  }

  let connectTime: number = DEFAULTS.connectTime;
  let enableGracefulRestart = false;
  let passwordSecret: SecretRef | undefined;
  let secretPath: string | undefined;
  if (spelling === 'camel') {
    connectTime = readConnectTime(r, m, path) ?? DEFAULTS.connectTime;
    enableGracefulRestart = r.bool(m, 'enableGracefulRestart', path) ?? false;
    // MetalLB deprecated disableMP and ignores it (it admits it with a warning); so do we.
    if (r.bool(m, 'disableMP', path) === true) {
      r.warn(at(path, 'disableMP'), 'disableMP is deprecated and has no effect (each address family has its own session setup already); remove it');
    }
    const sp = at(path, 'passwordSecret');
    const ref = r.fields(m.passwordSecret, sp);
    if (ref) {
      r.onlyKnown(ref, sp, ['name', 'namespace']);
      const secretName = r.required(ref, 'name', sp, r.string(ref, 'name', sp));
      const secretNamespace = r.string(ref, 'namespace', sp);
      if (secretName === '') r.fail(at(sp, 'name'), 'must not be empty');
      if (secretName) {
        passwordSecret = { name: secretName, namespace: secretNamespace || namespace };
        secretPath = sp;
      }
      if (password !== undefined && password !== '') {
        r.fail(path, 'set either password or passwordSecret, not both');
      }
    }
  }

  if (myASN === undefined || peerASN === undefined || peerAddress === undefined) return undefined;
  const peer: BGPPeer = {
    name,
    origin,
    myASN,
    peerASN,
    peerAddress,
    peerPort,
    ...(sourceAddress ? { sourceAddress } : {}),
    holdTime: timers.holdTime,
    keepaliveTime: timers.keepaliveTime,
    connectTime,
    ...(routerID ? { routerID } : {}),
    nodeSelectors,
    ...(password ? { password } : {}),
    ...(passwordSecret ? { passwordSecret } : {}),
    ...(bfdProfile ? { bfdProfile } : {}),
    ebgpMultiHop,
    enableGracefulRestart,
  };
  const paths: PeerPaths = { myASN: at(path, k.myASN), peerAddress: at(path, k.peerAddress), routerID: at(path, k.routerID), bfdProfile: at(path, k.bfdProfile) };
  return { peer, paths, ...(secretPath ? { secretPath } : {}) };
}

function readIP(r: Reader, m: Fields, key: string, path: string): IP | undefined {
  const text = r.string(m, key, path);
  if (text === undefined) return undefined;
  const ip = parseIP(text);
  if (!ip.ok) {
    r.fail(at(path, key), ip.error);
    return undefined;
  }
  return ip.value;
}

/**
 * A timer in whole seconds (fractions truncated, as MetalLB does). The ConfigMap also took a
 * bare number of seconds; the CRDs' metav1.Duration is a string only.
 */
function readSeconds(r: Reader, m: Fields, key: string, path: string, numberAllowed: boolean): number | undefined {
  const v = m[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && numberAllowed) {
    if (Number.isFinite(v) && v >= 0) return Math.floor(v);
    r.fail(at(path, key), `must be a duration like "90s" or a number of seconds, got ${v}`);
    return undefined;
  }
  if (typeof v !== 'string') {
    const shape = numberAllowed ? 'a duration like "90s" or a number of seconds' : 'a duration like "90s"';
    r.fail(at(path, key), `must be ${shape}, got ${describe(v)}`);
    return undefined;
  }
  const d = parseDuration(v);
  if (!d.ok) {
    r.fail(at(path, key), d.error);
    return undefined;
  }
  return Math.floor(d.value.seconds);
}

/**
 * Hold time 0 (no keepalives) or at least 3 s (RFC 4271 4.2); keepalive below it. When only
 * the keepalive is given, the CRD's hold time is three keepalives (MetalLB's BGPPeer rule),
 * while the ConfigMap kept its 90 s default (MetalLB's legacy rule).
 */
function readTimers(r: Reader, m: Fields, path: string, spelling: Spelling): { holdTime: number; keepaliveTime: number } {
  const k = PEER_KEYS[spelling];
  const before = r.errorCount;
  const hold = readSeconds(r, m, k.holdTime, path, spelling === 'kebab');
  const keepalive = readSeconds(r, m, k.keepaliveTime, path, spelling === 'kebab');
  const holdDefault = keepalive !== undefined && spelling === 'camel' ? keepalive * 3 : DEFAULTS.holdTime;
  const holdTime = hold ?? holdDefault;
  const keepaliveTime = keepalive ?? Math.floor(holdTime / 3);
  if (r.errorCount !== before) return { holdTime: DEFAULTS.holdTime, keepaliveTime: DEFAULTS.holdTime / 3 };
  const raw = m[k.holdTime];
  if (hold !== undefined && holdTime < 3 && (holdTime !== 0 || rawNonZero(raw))) {
    r.fail(at(path, k.holdTime), `invalid hold time ${describeTimer(raw)}: must be 0 or at least 3s`);
  } else if (holdTime > 65535) {
    // The OPEN message carries the hold time in 16 bits (RFC 4271 4.2).
    const where = hold !== undefined ? k.holdTime : k.keepaliveTime;
    r.fail(at(path, where), `hold time ${formatSeconds(holdTime)} is too long: BGP allows at most 65535s`);
  } else if (holdTime === 0 && keepaliveTime !== 0) {
    r.fail(at(path, k.keepaliveTime), `keepalive time ${formatSeconds(keepaliveTime)} must be 0 when the hold time is 0 (keepalives are off)`);
  } else if (holdTime !== 0 && keepaliveTime >= holdTime) {
    r.fail(at(path, k.keepaliveTime), `keepalive time ${formatSeconds(keepaliveTime)} must be lower than the hold time ${formatSeconds(holdTime)}`);
  } else if (holdTime !== 0 && keepaliveTime === 0) {
    r.fail(at(path, k.keepaliveTime), `keepalive time must be at least 1s when the hold time is ${formatSeconds(holdTime)}`);
  }
  return { holdTime, keepaliveTime };
}

/** "0.5s" truncates to 0 but is not the operator asking for "no hold timer". */
function rawNonZero(raw: unknown): boolean {
  if (typeof raw === 'number') return raw !== 0;
  const d = parseDuration(raw);
  return d.ok && d.value.milliseconds !== 0;
}

function describeTimer(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw) : `${String(raw)}s`;
}

/** MetalLB's BGPPeer schema: 1..65535 whole seconds. */
function readConnectTime(r: Reader, m: Fields, path: string): number | undefined {
  const raw = r.string(m, 'connectTime', path);
  if (raw === undefined) return undefined;
  const d = parseDuration(raw);
  if (!d.ok) {
    r.fail(at(path, 'connectTime'), d.error);
    return undefined;
  }
  if (d.value.milliseconds % 1000 !== 0 || d.value.seconds < 1 || d.value.seconds > 65535) {
    r.fail(at(path, 'connectTime'), `invalid connect time "${raw}": must be a whole number of seconds from 1s to 65535s`);
    return undefined;
  }
  return d.value.seconds;
}

/** A pool's address list: each entry a CIDR or an `a-b` range; bad entries reported and left out. */
export function readRanges(r: Reader, items: readonly unknown[], path: string): { ranges: IPRange[]; paths: string[] } {
  const ranges: IPRange[] = [];
  const paths: string[] = [];
  items.forEach((item, i) => {
    const p = at(path, i);
    const text = r.stringValue(item, p);
    if (text === undefined) {
      if (item === null) r.fail(p, 'must be a CIDR or an address range, got nothing');
      return;
    }
    const parsed = parseRange(text);
    if (!parsed.ok) {
      const network = hostBitsNetwork(text);
      if (network === undefined) {
        r.fail(p, parsed.error);
        return;
      }
      // MetalLB reads 10.20.30.40/24 as the network 10.20.30.0/24 without a word; we read it the
      // same way, and say so, since the operator may have meant the one address.
      r.warn(
        p,
        `${JSON.stringify(text)} has host bits set: it is read as the whole network ${network.text} (as MetalLB does); ` +
          `write "${network.text}" for the network, or "${text.slice(0, text.indexOf('/'))}/${FAMILY_BITS[network.family]}" for the one address`,
      );
      ranges.push(network);
      paths.push(p);
      return;
    }
    ranges.push(parsed.value);
    paths.push(p);
  });
  return { ranges, paths };
}

/** The network a CIDR with host bits set stands for (`10.20.30.40/24` -> 10.20.30.0/24); undefined for anything else. */
function hostBitsNetwork(text: string): IPRange | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip.ok || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > FAMILY_BITS[ip.value.family]) return undefined;
  const network = networkOf(ip.value, prefix);
  return network.first === ip.value.value ? undefined : network;
}

const ADV_KEYS = {
  kebab: { agg: 'aggregation-length', agg6: 'aggregation-length-v6', localPref: 'localpref', communities: 'communities' },
  camel: { agg: 'aggregationLength', agg6: 'aggregationLengthV6', localPref: 'localPref', communities: 'communities' },
} as const;

/** The BGP attribute fields of an advertisement, for the unknown-field check. */
export function advertisementTuningKeys(spelling: Spelling): readonly string[] {
  return Object.values(ADV_KEYS[spelling]);
}

/** What an advertisement does to its routes; the same in both sources. */
export interface AdvertisementTuning {
  aggregationLength: number;
  aggregationLengthV6: number;
  localPref?: number;
  communityRefs: Ref[];
  aggregationLengthPath: string;
  aggregationLengthV6Path: string;
  localPrefPath: string;
}

/** The BGP attributes of an advertisement; communities stay unresolved until all aliases are known. */
export function readAdvertisementTuning(r: Reader, m: Fields, path: string, spelling: Spelling): AdvertisementTuning {
  const k = ADV_KEYS[spelling];
  const localPref = r.int(m, k.localPref, path, 0, U32_MAX);
  const communitiesPath = at(path, k.communities);
  const communityRefs: Ref[] = [];
  (r.list(m, k.communities, path) ?? []).forEach((item, i) => {
    const text = r.stringValue(item, at(communitiesPath, i));
    if (text !== undefined) communityRefs.push({ text, path: at(communitiesPath, i) });
    else if (item === null) r.fail(at(communitiesPath, i), 'must be a community or an alias name, got nothing');
  });
  r.noDuplicates(
    communityRefs.map((c) => c.text),
    communitiesPath,
    'community',
  );
  return {
    aggregationLength: r.int(m, k.agg, path, 0, 32) ?? DEFAULTS.aggregationLength,
    aggregationLengthV6: r.int(m, k.agg6, path, 0, 128) ?? DEFAULTS.aggregationLengthV6,
    ...(localPref !== undefined ? { localPref } : {}),
    communityRefs,
    aggregationLengthPath: at(path, k.agg),
    aggregationLengthV6Path: at(path, k.agg6),
    localPrefPath: at(path, k.localPref),
  };
}
