import { ruleMatches, webhookConfigurationStrategies, type AdmissionAttributes, type Rule } from './admission.js';
import { builtinTypes } from './builtins.js';
import { crdStrategy } from './crds.js';
import type { KubeObject } from './object.js';
import type { ResourceType } from './resources.js';
import { ServiceStrategy } from './services.js';
import { ObjectStore } from './store.js';

const types = builtinTypes(new ServiceStrategy(new ObjectStore()), { crd: crdStrategy, ...webhookConfigurationStrategies });
const typeOf = (group: string, resource: string): ResourceType => types.find((t) => t.group === group && t.resource === resource) as ResourceType;

function attrs(operation: AdmissionAttributes['operation'], type: ResourceType, subresource = ''): AdmissionAttributes {
  return { operation, type, subresource, namespace: 'default', name: 'x', object: null, oldObject: null, dryRun: false, options: {}, user: { username: 'u', groups: [] } };
}

const services = typeOf('', 'services');
const nodes = typeOf('', 'nodes');
const leases = typeOf('coordination.k8s.io', 'leases');

describe('webhook rules', () => {
  const rule = (r: Partial<Rule>): Rule => ({ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'], ...r });

  it.each<[string, Rule, AdmissionAttributes, boolean]>([
    ['the exact resource', rule({}), attrs('CREATE', services), true],
    ['another operation', rule({}), attrs('UPDATE', services), false],
    ['any operation', rule({ operations: ['*'] }), attrs('DELETE', services), true],
    ['another group', rule({}), attrs('CREATE', leases), false],
    ['any group, version and resource', rule({ apiGroups: ['*'], apiVersions: ['*'], resources: ['*'] }), attrs('CREATE', leases), true],
    ['a subresource the rule does not name', rule({}), attrs('CREATE', services, 'status'), false],
    ['a named subresource', rule({ resources: ['services/status'] }), attrs('CREATE', services, 'status'), true],
    ['*/status', rule({ resources: ['*/status'] }), attrs('CREATE', services, 'status'), true],
    // As in the apiserver's matcher, "/*" matches the main resource too (empty subresource).
    ['services/* for the main resource', rule({ resources: ['services/*'] }), attrs('CREATE', services), true],
    ['scope Namespaced for a cluster-scoped resource', rule({ resources: ['*'], scope: 'Namespaced' }), attrs('CREATE', nodes), false],
    ['scope Cluster for a cluster-scoped resource', rule({ resources: ['*'], scope: 'Cluster' }), attrs('CREATE', nodes), true],
  ])('%s: %s', (_name, r, a, expected) => {
    expect(ruleMatches(r, a)).toBe(expected);
  });
});

describe('webhook configuration validation and defaults', () => {
  const config = (webhook: Record<string, unknown>): KubeObject => ({
    metadata: { name: 'c' },
    webhooks: [{ name: 'hook.example.com', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: { url: 'https://127.0.0.1:9443/' }, ...webhook }],
  });
  const validate = (o: KubeObject): string[] => (webhookConfigurationStrategies.validatingWebhooks.validate?.(o, undefined) ?? []).map((e) => `${e.field} ${e.type}`);

  it('accepts a complete webhook and fills in the API defaults', () => {
    const o = config({
      clientConfig: { service: { namespace: 'metallb-system', name: 'webhook' } },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] }],
    });
    webhookConfigurationStrategies.mutatingWebhooks.defaults?.(o);
    expect(validate(o)).toEqual([]);
    expect((o.webhooks as Record<string, unknown>[])[0]).toMatchObject({
      failurePolicy: 'Fail',
      matchPolicy: 'Equivalent',
      timeoutSeconds: 10,
      reinvocationPolicy: 'Never',
      namespaceSelector: {},
      objectSelector: {},
      clientConfig: { service: { port: 443 } },
      rules: [{ scope: '*' }],
    });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a name without three segments', { name: 'hook' }, 'webhooks[0].name Invalid'],
    ['no admissionReviewVersions', { admissionReviewVersions: [] }, 'webhooks[0].admissionReviewVersions Required'],
    ['sideEffects Some', { sideEffects: 'Some' }, 'webhooks[0].sideEffects NotSupported'],
    ['both url and service', { clientConfig: { url: 'https://x/', service: { namespace: 'a', name: 'b' } } }, 'webhooks[0].clientConfig Required'],
    ['an http URL', { clientConfig: { url: 'http://127.0.0.1/' } }, 'webhooks[0].clientConfig.url Invalid'],
    ['a timeout over 30 s', { timeoutSeconds: 31 }, 'webhooks[0].timeoutSeconds Invalid'],
    ['an unknown operation', { rules: [{ operations: ['PATCH'], resources: ['services'] }] }, 'webhooks[0].rules[0].operations NotSupported'],
    ['a matchCondition outside the CEL subset', { matchConditions: [{ name: 'x', expression: 'object.spec.type ==' }] }, 'webhooks[0].matchConditions[0].expression Invalid'],
  ])('rejects %s', (_name, webhook, error) => {
    expect(validate(config(webhook))).toContain(error);
  });
});
