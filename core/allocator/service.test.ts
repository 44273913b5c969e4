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

  test('tolerates JSON nulls and a missing spec', () => {
    const r = serviceToRequest({ metadata: { name: 'x', namespace: 'n', labels: null, annotations: null }, spec: null }, {});
    expect(r.ok && r.request).toMatchObject({ name: 'x', namespace: 'n', labels: {}, ports: [], requestedIPs: [] });
  });
});
