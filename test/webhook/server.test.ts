/**
 * The webhook HTTPS server over real TLS: review checking (400 table), uid echo, patch
 * encoding, denials, handler failures, health, readiness and metrics.
 */
import { Metrics } from '../../webhook/metrics.js';
import type { AdmissionRequest, AdmissionVerdict } from '../../webhook/review.js';
import { request as httpsRequest } from 'node:https';
import { MAX_REVIEW_BYTES, startWebhookServer, type WebhookServer } from '../../webhook/server.js';
import { httpsCall, NAMESPACE, SERVICE, testBundle } from './support.js';

const bundle = testBundle();
const metrics = new Metrics();
let isReady = false;
const seen: AdmissionRequest[] = [];
let server: WebhookServer;

const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { type: 'LoadBalancer' } };
const review = (request: Record<string, unknown>): Record<string, unknown> => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
const baseRequest = {
  uid: 'u-1',
  kind: { group: '', version: 'v1', kind: 'Service' },
  resource: { group: '', version: 'v1', resource: 'services' },
  name: 'web',
  namespace: 'default',
  operation: 'CREATE',
  userInfo: { username: 'alice', groups: ['devs'] },
  object: svc,
  dryRun: false,
};

beforeAll(async () => {
  server = await startWebhookServer({
    certificate: bundle,
    host: '127.0.0.1',
    registry: metrics.registry,
    observeAdmission: (h, s, a) => metrics.observeAdmission(h, s, a),
    ready: () => isReady,
    handlers: {
      mutateServices: async (r): Promise<AdmissionVerdict> => {
        seen.push(r);
        if (r.name === 'boom') throw new Error('the allocator\nfell over');
        return { allowed: true, patch: [{ op: 'add', path: '/metadata/annotations', value: { 'metallb.io/ip-allocated-from-pool': 'default' } }], warnings: ['pool nearly full'] };
      },
      validateServices: async (r): Promise<AdmissionVerdict> =>
        r.name === 'bad' ? { allowed: false, code: 409, message: 'IP 192.0.2.1 is held by default/other' } : { allowed: true, patch: [{ op: 'add', path: '/x', value: 1 }] },
    },
  });
});
afterAll(() => server.close());

const post = (path: string, body: unknown) => httpsCall(server.port, bundle.caCertPem, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body));

describe('admission', () => {
  it('echoes the uid and encodes the patch as base64 JSONPatch, with warnings', async () => {
    const res = await post('/mutate/services', review({ ...baseRequest, uid: 'abc-123' }));
    expect(res.status).toBe(200);
    const out = res.json as { apiVersion: string; kind: string; response: Record<string, unknown> };
    expect(out.apiVersion).toBe('admission.k8s.io/v1');
    expect(out.kind).toBe('AdmissionReview');
    expect(out.response.uid).toBe('abc-123');
    expect(out.response.allowed).toBe(true);
    expect(out.response.patchType).toBe('JSONPatch');
    expect(JSON.parse(Buffer.from(out.response.patch as string, 'base64').toString('utf8'))).toEqual([
      { op: 'add', path: '/metadata/annotations', value: { 'metallb.io/ip-allocated-from-pool': 'default' } },
    ]);
    expect(out.response.warnings).toEqual(['pool nearly full']);
    const last = seen.at(-1);
    expect(last).toMatchObject({ uid: 'abc-123', name: 'web', namespace: 'default', operation: 'CREATE', dryRun: false, userInfo: { username: 'alice', groups: ['devs'] } });
    expect(last?.object).toEqual(svc);
  });

  it('passes generateName (empty name) and dryRun through', async () => {
    const { name: _name, ...noName } = baseRequest;
    await post('/mutate/services', review({ ...noName, dryRun: true }));
    expect(seen.at(-1)).toMatchObject({ name: '', dryRun: true });
  });

  it('turns a denial into allowed:false with a Status, and never patches from a validating route', async () => {
    const denied = await post('/validate/services', review({ ...baseRequest, name: 'bad', uid: 'd-1' }));
    expect(denied.json).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'd-1', allowed: false, status: { metadata: {}, status: 'Failure', code: 409, reason: 'Conflict', message: 'IP 192.0.2.1 is held by default/other' } },
    });
    const allowed = await post('/validate/services', review({ ...baseRequest, uid: 'd-2' }));
    expect(allowed.json).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'd-2', allowed: true } });
  });

  it('answers HTTP 500 when a handler throws, so failurePolicy decides', async () => {
    const res = await post('/mutate/services', review({ ...baseRequest, name: 'boom' }));
    expect(res.status).toBe(500);
    expect(res.text).toBe('internal error: the allocator fell over\n');
  });

  const malformed: [string, string | Record<string, unknown>, RegExp][] = [
    ['not JSON', '{"apiVersion": ', /^body is not JSON/],
    ['empty body', '', /^body is not JSON/],
    ['a JSON array', '[]', /must be a JSON object/],
    ['v1beta1', { ...review(baseRequest), apiVersion: 'admission.k8s.io/v1beta1' }, /unsupported apiVersion "admission.k8s.io\/v1beta1": only admission.k8s.io\/v1/],
    ['no apiVersion', { kind: 'AdmissionReview', request: baseRequest }, /unsupported apiVersion undefined/],
    ['wrong kind', { ...review(baseRequest), kind: 'Pod' }, /unexpected kind "Pod"/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /has no request/],
    ['no uid', review({ ...baseRequest, uid: undefined }), /request.uid is missing/],
    ['empty uid', review({ ...baseRequest, uid: '' }), /request.uid is missing/],
    ['bad operation', review({ ...baseRequest, operation: 'PATCH' }), /request.operation "PATCH" is not one of/],
    ['no kind', review({ ...baseRequest, kind: undefined }), /request.kind must be an object/],
    ['no resource', review({ ...baseRequest, resource: 'services' }), /request.resource must be an object/],
    ['CREATE without object', review({ ...baseRequest, object: undefined }), /request.object is missing for CREATE/],
    ['UPDATE without oldObject', review({ ...baseRequest, operation: 'UPDATE' }), /request.oldObject is missing for UPDATE/],
    ['object not an object', review({ ...baseRequest, object: 'svc' }), /request.object must be an object/],
    ['dryRun not boolean', review({ ...baseRequest, dryRun: 'yes' }), /request.dryRun must be a boolean/],
  ];
  it.each(malformed)('rejects %s with HTTP 400 and one line', async (_case, body, message) => {
    const before = seen.length;
    const res = await post('/mutate/services', body);
    expect(res.status).toBe(400);
    expect(res.text).toMatch(message);
    expect(res.text.trimEnd()).not.toContain('\n');
    expect(seen.length).toBe(before);
  });

  /** A POST with the given Content-Type header (none when undefined); httpsCall always sends application/json. */
  const postAs = (path: string, contentType: string | undefined, body: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: server.port,
          method: 'POST',
          path,
          ca: bundle.caCertPem,
          servername: `${SERVICE}.${NAMESPACE}.svc`,
          agent: false,
          headers: { ...(contentType !== undefined && { 'Content-Type': contentType }), 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  it.each<[string, string | undefined, string]>([
    ['text/plain', 'text/plain', 'unsupported Content-Type "text/plain": an AdmissionReview must be sent as application/json'],
    ['text/plain with a charset', 'text/plain; charset=utf-8', 'unsupported Content-Type "text/plain; charset=utf-8": an AdmissionReview must be sent as application/json'],
    ['form data', 'application/x-www-form-urlencoded', 'unsupported Content-Type "application/x-www-form-urlencoded"'],
    ['a JSON look-alike', 'application/jsonp', 'unsupported Content-Type "application/jsonp"'],
    ['an empty header', '', 'unsupported Content-Type none'],
    ['no header', undefined, 'no Content-Type: an AdmissionReview must be sent as application/json'],
    ['JSON in Latin-1', 'application/json; charset=iso-8859-1', 'an AdmissionReview must be UTF-8 JSON (application/json; charset=utf-8)'],
  ])('refuses %s with HTTP 415 and one line, before the handler runs', async (_case, contentType, message) => {
    const before = seen.length;
    const res = await postAs('/mutate/services', contentType, JSON.stringify(review(baseRequest)));
    expect(res.status).toBe(415);
    expect(res.text).toContain(message);
    expect(res.text.trimEnd()).not.toContain('\n');
    expect(seen.length).toBe(before);
  });

  it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"', 'application/json; charset=utf-8; foo=bar'])(
    'accepts Content-Type %s',
    async (contentType) => {
      const before = seen.length;
      const res = await postAs('/mutate/services', contentType, JSON.stringify(review({ ...baseRequest, uid: 'ct-1' })));
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toMatchObject({ response: { uid: 'ct-1', allowed: true } });
      expect(seen.length).toBe(before + 1);
    },
  );

  it('rejects a body over the cap with HTTP 400', async () => {
    const huge = JSON.stringify(review({ ...baseRequest, object: { ...svc, data: 'x'.repeat(MAX_REVIEW_BYTES) } }));
    const res = await post('/mutate/services', huge);
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/too large/);
  });

  it('answers 404 for a route without a handler and for unknown paths', async () => {
    expect((await post('/validate/config', review(baseRequest))).status).toBe(404);
    expect((await post('/mutate/pods', review(baseRequest))).status).toBe(404);
  });

  it('keeps idle connections longer than the API server does (90 s), so a reused one is never closed under a POST', () => {
    expect(server.server.keepAliveTimeout).toBeGreaterThan(90_000);
    expect(server.server.headersTimeout).toBeGreaterThan(server.server.keepAliveTimeout);
  });

  it('keeps serving after all of that', async () => {
    expect((await post('/mutate/services', review(baseRequest))).status).toBe(200);
  });
});

describe('health and metrics', () => {
  it('is live at once and ready only when ready() says so', async () => {
    expect((await httpsCall(server.port, bundle.caCertPem, 'GET', '/healthz')).status).toBe(200);
    isReady = false;
    const notReady = await httpsCall(server.port, bundle.caCertPem, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    isReady = true;
    expect((await httpsCall(server.port, bundle.caCertPem, 'GET', '/readyz')).status).toBe(200);
  });

  it('serves the Prometheus text with every metric name and the admission latency', async () => {
    metrics.setPoolUsage('default', 3, 254);
    metrics.countAllocation('default');
    metrics.countFailure('pool-full');
    metrics.setConfigValid(true);
    const res = await httpsCall(server.port, bundle.caCertPem, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain/);
    for (const name of [
      'metallb_allocator_addresses_in_use_total{pool="default"} 3',
      'metallb_allocator_addresses_total{pool="default"} 254',
      'metallb_allocations_total{pool="default"} 1',
      'metallb_allocation_failures_total{reason="pool-full"} 1',
      'metallb_config_state 1',
      'metallb_config_last_reload_success_timestamp_seconds',
      'metallb_admission_duration_seconds_bucket{le="0.001",handler="mutateServices",allowed="true"}',
      'metallb_admission_duration_seconds_count{handler="mutateServices",allowed="error"} 1',
      'metallb_admission_duration_seconds_count{handler="validateServices",allowed="false"} 1',
    ])
      expect(res.text).toContain(name);
  });
});

describe('Metrics', () => {
  it('keeps its own registry: two instances do not share counters', async () => {
    const a = new Metrics({ now: () => 1_700_000_000_000 });
    const b = new Metrics();
    a.countAllocation('p');
    a.setConfigValid(true);
    a.setConfigValid(false);
    expect(await a.text()).toContain('metallb_allocations_total{pool="p"} 1');
    expect(await a.text()).toContain('metallb_config_state 0');
    expect(await a.text()).toContain('metallb_config_last_reload_success_timestamp_seconds 1700000000');
    expect(await b.text()).not.toContain('pool="p"');
    a.setPoolUsage('p', 1, 2);
    a.removePool('p');
    expect(await a.text()).not.toContain('metallb_allocator_addresses_in_use_total{pool="p"}');
  });
});
