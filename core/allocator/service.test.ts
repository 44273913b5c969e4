import { formatIP } from '../ip/index.js';
import { serviceToRequest, type ServiceShape } from './service.js';

function svc(annotations: Record<string, string> = {}, spec: ServiceShape['spec'] = {}): ServiceShape {
  return {
    metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' }, annotations },
    spec: { type: 'LoadBalancer', ports: [{ port: 80 }], ...spec },
  };
}

describe('serviceToRequest', () => {
  test('a plain Service gets Kubernetes defaults', () => {
    const r = serviceToRequest(svc(), { team: 'a' });
    expect(r).toEqual({
      ok: true,
      deprecated: [],
      request: {
        namespace: 'shop',
        name: 'web',
        labels: { app: 'web' },
        namespaceLabels: { team: 'a' },
        families: [],
        familyPolicy: 'SingleStack',
        requestedIPs: [],
        ports: [{ port: 80, protocol: 'TCP' }],
        trafficPolicy: 'Cluster',
        selector: {},
      },
    });
  });

  test.each<{ name: string; ann: Record<string, string>; spec: ServiceShape['spec']; ips: string[] }>([
    { name: 'spec.loadBalancerIP', ann: {}, spec: { loadBalancerIP: '192.0.2.5' }, ips: ['192.0.2.5'] },
    { name: 'loadBalancerIPs annotation, dual-stack', ann: { 'metallb.io/loadBalancerIPs': '192.0.2.5, 2001:db8::5' }, spec: {}, ips: ['192.0.2.5', '2001:db8::5'] },
    { name: 'deprecated loadBalancerIPs annotation', ann: { 'metallb.universe.tf/loadBalancerIPs': '192.0.2.6' }, spec: {}, ips: ['192.0.2.6'] },
    {
      name: 'loadBalancerIP agreeing with the annotation',
      ann: { 'metallb.io/loadBalancerIPs': '192.0.2.5,2001:db8::5' },
      spec: { loadBalancerIP: '192.0.2.5' },
      ips: ['192.0.2.5', '2001:db8::5'],
    },
    { name: 'empty annotation is absent', ann: { 'metallb.io/loadBalancerIPs': '' }, spec: {}, ips: [] },
  ])('requested IPs from $name', ({ ann, spec, ips }) => {
    const r = serviceToRequest(svc(ann, spec), {});
    expect(r.ok && r.request.requestedIPs.map(formatIP)).toEqual(ips);
  });

  test.each<{ name: string; ann: Record<string, string>; spec: ServiceShape['spec']; msg: RegExp }>([
    { name: 'a bad IP in the annotation', ann: { 'metallb.io/loadBalancerIPs': '192.0.2.300' }, spec: {}, msg: /metallb.io\/loadBalancerIPs.*"192.0.2.300" is not an IP address/ },
    { name: 'two IPv4 addresses', ann: { 'metallb.io/loadBalancerIPs': '192.0.2.1,192.0.2.2' }, spec: {}, msg: /two IPv4 addresses \(192.0.2.1, 192.0.2.2\)/ },
    { name: 'two IPv6 addresses', ann: { 'metallb.io/loadBalancerIPs': '2001:db8::1,2001:db8::2' }, spec: {}, msg: /two IPv6 addresses/ },
    { name: 'an empty entry', ann: { 'metallb.io/loadBalancerIPs': '192.0.2.1,' }, spec: {}, msg: /is not an IP address/ },
    { name: 'a bad spec.loadBalancerIP', ann: {}, spec: { loadBalancerIP: 'nope' }, msg: /spec.loadBalancerIP: "nope" is not an IP address/ },
    {
      name: 'loadBalancerIP contradicting the annotation',
      ann: { 'metallb.io/loadBalancerIPs': '192.0.2.1' },
      spec: { loadBalancerIP: '192.0.2.2' },
      msg: /spec.loadBalancerIP 192.0.2.2 is not among metallb.io\/loadBalancerIPs \(192.0.2.1\)/,
    },
    {
      name: 'old and new pool names disagreeing',
      ann: { 'metallb.io/address-pool': 'a', 'metallb.universe.tf/address-pool': 'b' },
      spec: {},
      msg: /metallb.io\/address-pool="a" and metallb.universe.tf\/address-pool="b" disagree/,
    },
    { name: 'an unknown ipFamilyPolicy', ann: {}, spec: { ipFamilyPolicy: 'Sometimes' }, msg: /spec.ipFamilyPolicy "Sometimes"/ },
    { name: 'an unknown ipFamilies entry', ann: {}, spec: { ipFamilies: ['IPv5'] }, msg: /spec.ipFamilies entry "IPv5"/ },
  ])('$name is a malformed-annotation failure, not a throw', ({ ann, spec, msg }) => {
    const r = serviceToRequest(svc(ann, spec), {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.failure.code).toBe('malformed-annotation');
    expect(r.failure.message).toMatch(msg);
    expect(r.failure.message).toMatch(/^shop\/web: /);
    expect(r.failure.message).not.toContain('\n');
  });

  test.each([
    { name: 'address-pool', key: 'address-pool', field: 'pool' as const },
    { name: 'allow-shared-ip', key: 'allow-shared-ip', field: 'sharingKey' as const },
  ])('metallb.universe.tf/$name is an alias of metallb.io/$name, reported as deprecated', ({ key, field }) => {
    const old = serviceToRequest(svc({ [`metallb.universe.tf/${key}`]: 'v' }), {});
    const now = serviceToRequest(svc({ [`metallb.io/${key}`]: 'v' }), {});
    const both = serviceToRequest(svc({ [`metallb.io/${key}`]: 'v', [`metallb.universe.tf/${key}`]: 'v' }), {});
    expect(old.ok && old.request[field]).toBe('v');
    expect(now.ok && now.request[field]).toBe('v');
    expect(both.ok && both.request[field]).toBe('v');
    expect(old.deprecated).toEqual([{ used: `metallb.universe.tf/${key}`, preferred: `metallb.io/${key}` }]);
    expect(now.deprecated).toEqual([]);
    expect(both.deprecated).toHaveLength(1);
  });

  test('spec fields: families, policy, ports with protocols, Local policy and selector', () => {
    const r = serviceToRequest(
      svc(
        {},
        {
          ipFamilies: ['IPv6', 'IPv4'],
          ipFamilyPolicy: 'RequireDualStack',
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
          externalTrafficPolicy: 'Local',
          selector: { app: 'dns' },
        },
      ),
      {},
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.request).toMatchObject({
      families: ['IPv6', 'IPv4'],
      familyPolicy: 'RequireDualStack',
      ports: [
        { port: 53, protocol: 'UDP' },
        { port: 53, protocol: 'TCP' },
      ],
      trafficPolicy: 'Local',
      selector: { app: 'dns' },
    });
  });

  // The object comes off the wire as untyped JSON: a value of the wrong type is a one-line
  // refusal naming the field, never a TypeError (which the webhook answered with HTTP 500).
  test.each<{ name: string; svc: unknown; msg: string }>([
    {
      name: 'a numeric loadBalancerIPs annotation',
      svc: { metadata: { annotations: { 'metallb.io/loadBalancerIPs': 5 } } },
      msg: 'annotation metallb.io/loadBalancerIPs must be a string, got 5',
    },
    {
      name: 'a list as address-pool',
      svc: { metadata: { annotations: { 'metallb.io/address-pool': ['a'] } } },
      msg: 'annotation metallb.io/address-pool must be a string, got a list',
    },
    {
      name: 'a map as allow-shared-ip',
      svc: { metadata: { annotations: { 'metallb.io/allow-shared-ip': { k: 'v' } } } },
      msg: 'annotation metallb.io/allow-shared-ip must be a string, got a map',
    },
    {
      name: 'a boolean deprecated annotation',
      svc: { metadata: { annotations: { 'metallb.universe.tf/loadBalancerIPs': true } } },
      msg: 'annotation metallb.universe.tf/loadBalancerIPs must be a string, got true',
    },
    {
      name: 'a numeric assigned-ips annotation',
      svc: { metadata: { annotations: { 'metallb.io/assigned-ips': 1 } } },
      msg: 'annotation metallb.io/assigned-ips must be a string, got 1',
    },
    { name: 'annotations as a list', svc: { metadata: { annotations: ['a'] } }, msg: 'metadata.annotations must be a map of strings, got a list' },
    { name: 'a numeric label', svc: { metadata: { labels: { tier: 1 } } }, msg: 'label tier must be a string, got 1' },
    { name: 'metadata a string', svc: { metadata: 'x' }, msg: 'metadata must be a map, got "x"' },
    { name: 'spec a list', svc: { spec: [] }, msg: 'spec must be a map, got a list' },
    { name: 'ipFamilies a string', svc: { spec: { ipFamilies: 'IPv4' } }, msg: 'spec.ipFamilies must be a list such as [IPv4], got "IPv4"' },
    { name: 'ipFamilies a map', svc: { spec: { ipFamilies: { a: 'IPv4' } } }, msg: 'spec.ipFamilies must be a list such as [IPv4], got a map' },
    { name: 'an ipFamilies entry a number', svc: { spec: { ipFamilies: [4] } }, msg: 'spec.ipFamilies entry 4 is not IPv4 or IPv6' },
    { name: 'ipFamilyPolicy a list', svc: { spec: { ipFamilyPolicy: ['SingleStack'] } }, msg: 'spec.ipFamilyPolicy must be a string, got a list' },
    { name: 'loadBalancerIP a number', svc: { spec: { loadBalancerIP: 3221225985 } }, msg: 'spec.loadBalancerIP must be a string, got 3221225985' },
    { name: 'loadBalancerIP a list', svc: { spec: { loadBalancerIP: ['192.0.2.1'] } }, msg: 'spec.loadBalancerIP must be a string, got a list' },
    { name: 'externalTrafficPolicy a boolean', svc: { spec: { externalTrafficPolicy: true } }, msg: 'spec.externalTrafficPolicy must be a string, got true' },
    { name: 'an unknown externalTrafficPolicy', svc: { spec: { externalTrafficPolicy: 'Nearby' } }, msg: 'spec.externalTrafficPolicy "Nearby" is not Cluster or Local' },
    { name: 'selector a list', svc: { spec: { selector: ['app'] } }, msg: 'spec.selector must be a map of strings, got a list' },
    { name: 'a selector value a number', svc: { spec: { selector: { app: 7 } } }, msg: 'spec.selector.app must be a string, got 7' },
    { name: 'ports a number', svc: { spec: { ports: 80 } }, msg: 'spec.ports must be a list of ports such as [{port: 80}], got 80' },
    { name: 'ports a string', svc: { spec: { ports: '80' } }, msg: 'spec.ports must be a list of ports such as [{port: 80}], got "80"' },
    { name: 'a port entry null', svc: { spec: { ports: [null] } }, msg: 'spec.ports[0] must be a map such as {port: 80, protocol: TCP}, got null' },
    { name: 'a port entry a number', svc: { spec: { ports: [{ port: 80 }, 443] } }, msg: 'spec.ports[1] must be a map such as {port: 80, protocol: TCP}, got 443' },
    { name: 'a port a string', svc: { spec: { ports: [{ port: '80' }] } }, msg: 'spec.ports[0].port must be a port number from 1 to 65535, got "80"' },
    { name: 'a port out of range', svc: { spec: { ports: [{ port: 70000 }] } }, msg: 'spec.ports[0].port must be a port number from 1 to 65535, got 70000' },
    { name: 'a fractional port', svc: { spec: { ports: [{ port: 80.5 }] } }, msg: 'got 80.5' },
    { name: 'a protocol a number', svc: { spec: { ports: [{ port: 80, protocol: 6 }] } }, msg: 'spec.ports[0].protocol must be a string (TCP, UDP or SCTP), got 6' },
    { name: 'an unknown protocol', svc: { spec: { ports: [{ port: 80, protocol: 'tcp' }] } }, msg: 'spec.ports[0].protocol "tcp" is not TCP, UDP or SCTP' },
  ])('$name is refused with a one-line message', ({ svc: raw, msg }) => {
    const base = { metadata: { name: 'web', namespace: 'shop' }, spec: { type: 'LoadBalancer' } };
    const r = raw as { metadata?: unknown; spec?: unknown };
    const input = {
      metadata: r.metadata === undefined ? base.metadata : typeof r.metadata === 'object' && r.metadata !== null ? { ...base.metadata, ...r.metadata } : r.metadata,
      spec: r.spec === undefined ? base.spec : typeof r.spec === 'object' && r.spec !== null && !Array.isArray(r.spec) ? { ...base.spec, ...r.spec } : r.spec,
    };
    let result: ReturnType<typeof serviceToRequest> | undefined;
    expect(() => (result = serviceToRequest(input as unknown as ServiceShape, {}))).not.toThrow();
    expect(result?.ok).toBe(false);
    if (!result || result.ok) return;
    expect(result.failure.code).toBe('malformed-annotation');
    expect(result.failure.message).toContain(msg);
    expect(result.failure.message).not.toContain('\n');
  });

  test('a missing port, a missing protocol and empty policies keep their defaults', () => {
    const r = serviceToRequest({ metadata: { name: 'web', namespace: 'shop' }, spec: { ports: [{}, { port: 53 }], externalTrafficPolicy: '', ipFamilyPolicy: '' } }, {});
    expect(r.ok && r.request).toMatchObject({ ports: [{ port: 53, protocol: 'TCP' }], trafficPolicy: 'Cluster', familyPolicy: 'SingleStack' });
  });

  test('tolerates JSON nulls and a missing spec', () => {
    const r = serviceToRequest({ metadata: { name: 'x', namespace: 'n', labels: null, annotations: null }, spec: null }, {});
    expect(r.ok && r.request).toMatchObject({ name: 'x', namespace: 'n', labels: {}, ports: [], requestedIPs: [] });
  });
});
