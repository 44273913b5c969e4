import { parseIP, type IP } from '../ip/index.js';
import { newRequest, type Request, type ServicePort } from './request.js';
import { sameSelector, sharingProblem, sharingProblemAmong, type SharingCode } from './sharing.js';

function ip(text: string): IP {
  const p = parseIP(text);
  if (!p.ok) throw new Error(p.error);
  return p.value;
}

const tcp = (...ports: number[]): ServicePort[] => ports.map((port) => ({ port, protocol: 'TCP' }));

/** `ns/name` with a sharing key `k` and TCP port 80 unless told otherwise. */
function svc(service: string, extra: Partial<Request> = {}): Request {
  const [namespace = '', name = ''] = service.split('/');
  return newRequest({ namespace, name, sharingKey: 'k', ports: tcp(80), ...extra });
}

/** A request as read back from storage, with fields the producer left out. */
function stored(service: string, fields: Record<string, unknown>): Request {
  const [namespace = '', name = ''] = service.split('/');
  return { namespace, name, ...fields } as unknown as Request;
}

const local = (selector?: Record<string, string>): Partial<Request> => ({ trafficPolicy: 'Local', ...(selector && { selector }) });

interface Case {
  name: string;
  holder: Request;
  candidate: Request;
  code?: SharingCode;
  failureCode?: string;
  message?: RegExp;
}

const cases: Case[] = [
  // Rule 1: the same non-empty key.
  { name: 'same key, Cluster, different ports: shares', holder: svc('x/a'), candidate: svc('x/b', { ports: tcp(443) }) },
  {
    name: 'holder without a key',
    holder: svc('x/a', { sharingKey: undefined }),
    candidate: svc('x/b', { ports: tcp(443) }),
    code: 'no-sharing-key',
    failureCode: 'ip-in-use',
    message: /^192\.0\.2\.1 is already in use by x\/a; .*allow-shared-ip/,
  },
  { name: 'candidate without a key', holder: svc('x/a'), candidate: svc('x/b', { sharingKey: undefined, ports: tcp(443) }), code: 'no-sharing-key', failureCode: 'ip-in-use' },
  { name: 'an empty key is no key', holder: svc('x/a', { sharingKey: '' }), candidate: svc('x/b', { sharingKey: '', ports: tcp(443) }), code: 'no-sharing-key' },
  {
    name: 'different keys',
    holder: svc('x/a', { sharingKey: 'one' }),
    candidate: svc('x/b', { sharingKey: 'two', ports: tcp(443) }),
    code: 'sharing-key-mismatch',
    failureCode: 'sharing-key-mismatch',
    message: /^192\.0\.2\.1 is shared by x\/a under key "one", not "two"; /,
  },
  { name: 'keys differ only in case', holder: svc('x/a', { sharingKey: 'K' }), candidate: svc('x/b', { ports: tcp(443) }), code: 'sharing-key-mismatch' },
  // Rule 2: the same backends.
  {
    name: 'Cluster holder, Local candidate',
    holder: svc('x/a'),
    candidate: svc('x/b', { ports: tcp(443), ...local({ app: 'a' }) }),
    code: 'traffic-policy-differs',
    failureCode: 'sharing-key-mismatch',
    message: /x\/a has externalTrafficPolicy Cluster and x\/b has Local; /,
  },
  { name: 'Local holder, Cluster candidate', holder: svc('x/a', local({ app: 'a' })), candidate: svc('x/b', { ports: tcp(443) }), code: 'traffic-policy-differs' },
  // MetalLB's backend key is "" for both of these, so it would share them; we do not.
  { name: 'Cluster with Local without a selector (MetalLB shares)', holder: svc('x/a'), candidate: svc('x/b', { ports: tcp(443), ...local() }), code: 'traffic-policy-differs' },
  { name: 'Local, same selector', holder: svc('x/a', local({ app: 'a' })), candidate: svc('x/b', { ports: tcp(443), ...local({ app: 'a' }) }) },
  {
    name: 'Local, same selector written in another key order',
    holder: svc('x/a', local({ app: 'a', tier: 'web', zone: 'z1' })),
    candidate: svc('x/b', { ports: tcp(443), ...local({ zone: 'z1', tier: 'web', app: 'a' }) }),
  },
  {
    name: 'Local, no selector (undefined) and an empty one',
    holder: stored('x/a', { sharingKey: 'k', trafficPolicy: 'Local', ports: tcp(80) }),
    candidate: svc('x/b', { ports: tcp(443), ...local({}) }),
  },
  {
    name: 'Local, null selector and an empty one',
    holder: svc('x/a', { ...local(), selector: null as unknown as Request['selector'] }),
    candidate: svc('x/b', { ports: tcp(443), ...local({}) }),
  },
  {
    name: 'Local, different selectors',
    holder: svc('x/a', local({ app: 'a', tier: 'web' })),
    candidate: svc('x/b', { ports: tcp(443), ...local({ tier: 'web', app: 'b' }) }),
    code: 'selector-differs',
    failureCode: 'sharing-key-mismatch',
    message: /x\/a selects \{app=a,tier=web\} and x\/b selects \{app=b,tier=web\}; .*same selector/,
  },
  {
    name: 'Local, a selector and a subset of it',
    holder: svc('x/a', local({ app: 'a' })),
    candidate: svc('x/b', { ports: tcp(443), ...local({ app: 'a', tier: 'web' }) }),
    code: 'selector-differs',
  },
  { name: 'Local, no selector and a selector', holder: svc('x/a', local({})), candidate: svc('x/b', { ports: tcp(443), ...local({ app: 'a' }) }), code: 'selector-differs' },
  {
    name: 'Local, same keys, a value differs',
    holder: svc('x/a', local({ app: 'a', v: '1' })),
    candidate: svc('x/b', { ports: tcp(443), ...local({ app: 'a', v: '2' }) }),
    code: 'selector-differs',
  },
  { name: 'Cluster ignores selectors', holder: svc('x/a', { selector: { app: 'a' } }), candidate: svc('x/b', { ports: tcp(443), selector: { app: 'b' } }) },
  // Rule 3: no common port and protocol.
  {
    name: 'same port and protocol',
    holder: svc('x/a', { ports: tcp(80, 443) }),
    candidate: svc('x/b', { ports: tcp(8080, 443) }),
    code: 'port-conflict',
    failureCode: 'port-conflict',
    message: /^port TCP\/443 on 192\.0\.2\.1 is already used by x\/a; /,
  },
  {
    name: 'same port, other protocol (as MetalLB)',
    holder: svc('x/a', { ports: [{ port: 53, protocol: 'TCP' }] }),
    candidate: svc('x/b', { ports: [{ port: 53, protocol: 'UDP' }] }),
  },
  { name: 'SCTP and TCP on one port', holder: svc('x/a', { ports: [{ port: 9, protocol: 'SCTP' }] }), candidate: svc('x/b', { ports: [{ port: 9, protocol: 'TCP' }] }) },
  {
    name: 'a missing protocol is TCP (the API server default)',
    holder: svc('x/a', { ports: [{ port: 80, protocol: '' }] }),
    candidate: svc('x/b', { ports: tcp(80) }),
    code: 'port-conflict',
    message: /^port TCP\/80 /,
  },
  { name: 'no ports at all share', holder: svc('x/a', { ports: [] }), candidate: svc('x/b', { ports: [] }) },
  { name: 'stored holder without ports', holder: stored('x/a', { sharingKey: 'k' }), candidate: svc('x/b') },
  {
    name: 'stored holder without a traffic policy is Cluster',
    holder: stored('x/a', { sharingKey: 'k', ports: tcp(80) }),
    candidate: svc('x/b', { ports: tcp(443), ...local() }),
    code: 'traffic-policy-differs',
  },
  // Rules are checked in order: key, policy, selector, ports.
  { name: 'key before ports', holder: svc('x/a', { sharingKey: 'one' }), candidate: svc('x/b', { sharingKey: 'two' }), code: 'sharing-key-mismatch' },
  { name: 'policy before ports', holder: svc('x/a'), candidate: svc('x/b', local()), code: 'traffic-policy-differs' },
  { name: 'selector before ports', holder: svc('x/a', local({ app: 'a' })), candidate: svc('x/b', local({ app: 'b' })), code: 'selector-differs' },
  // A Service never conflicts with itself (it may change its key or ports in place).
  { name: 'the same Service', holder: svc('x/a', { sharingKey: undefined }), candidate: svc('x/a', { sharingKey: 'other' }) },
  { name: 'same name in another namespace is another Service', holder: svc('x/a'), candidate: svc('y/a'), code: 'port-conflict' },
];

describe('sharingProblem', () => {
  test.each(cases)('$name', ({ holder, candidate, code, failureCode, message }) => {
    const problem = sharingProblem(holder, candidate, ip('192.0.2.1'));
    expect(problem?.code).toBe(code);
    if (!problem) return;
    if (failureCode) expect(problem.failureCode).toBe(failureCode);
    expect(problem.holder).toBe(`${holder.namespace}/${holder.name}`);
    expect(problem.message).toContain(problem.holder);
    expect(problem.message).not.toContain('\n');
    if (message) expect(problem.message).toMatch(message);
  });

  test('without an IP the message says "the address"', () => {
    expect(sharingProblem(svc('x/a', { sharingKey: undefined }), svc('x/b'))?.message).toMatch(/^the address is already in use by x\/a; /);
  });

  test('port-conflict names the port', () => {
    expect(sharingProblem(svc('x/a', { ports: tcp(53) }), svc('x/b', { ports: [{ port: 53, protocol: 'UDP' }, ...tcp(53)] }))?.port).toEqual({ port: 53, protocol: 'TCP' });
  });
});

describe('sharingProblemAmong', () => {
  const a = svc('x/a', { ports: tcp(80) });
  const b = svc('x/b', { ports: tcp(443) });
  test.each([
    { name: 'no holders', holders: [], candidate: svc('x/c'), code: undefined, holder: undefined },
    { name: 'compatible with every holder', holders: [b, a], candidate: svc('x/c', { ports: tcp(8080) }), code: undefined, holder: undefined },
    { name: 'a port of the second holder', holders: [a, b], candidate: svc('x/c', { ports: tcp(443) }), code: 'port-conflict', holder: 'x/b' },
    { name: 'holders checked by name, whatever the order given', holders: [b, a], candidate: svc('x/c', { sharingKey: 'other' }), code: 'sharing-key-mismatch', holder: 'x/a' },
    { name: 'the candidate among the holders is skipped', holders: [a, b], candidate: svc('x/a', { ports: tcp(80) }), code: undefined, holder: undefined },
  ])('$name', ({ holders, candidate, code, holder }) => {
    const problem = sharingProblemAmong(holders, candidate);
    expect(problem?.code).toBe(code);
    expect(problem?.holder).toBe(holder);
  });
});

describe('sameSelector', () => {
  type Sel = Record<string, string> | null | undefined;
  test.each<{ a: Sel; b: Sel; same: boolean }>([
    { a: { app: 'a', tier: 'x' }, b: { tier: 'x', app: 'a' }, same: true },
    { a: undefined, b: {}, same: true },
    { a: null, b: undefined, same: true },
    { a: {}, b: { app: 'a' }, same: false },
    { a: { app: 'a' }, b: { app: 'b' }, same: false },
    { a: { app: 'a' }, b: { App: 'a' }, same: false },
    { a: { app: '' }, b: {}, same: false },
  ])('$a vs $b: $same', ({ a, b, same }) => {
    expect(sameSelector(a, b)).toBe(same);
    expect(sameSelector(b, a)).toBe(same);
  });
});
