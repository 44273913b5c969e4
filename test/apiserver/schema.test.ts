import { applyDefaults, prune, validateSchema, type Schema } from './schema.js';

const schema: Schema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      required: ['addresses'],
      properties: {
        addresses: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[0-9a-f.:/-]+$' } },
        autoAssign: { type: 'boolean', default: true },
        avoidBuggyIPs: { type: 'boolean', default: false },
        priority: { type: 'integer', minimum: 0, maximum: 100 },
        mode: { type: 'string', enum: ['layer2', 'bgp'] },
        port: { 'x-kubernetes-int-or-string': true },
        extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    status: { type: 'object', properties: { assigned: { type: 'integer' } } },
  },
};

describe('structural schemas', () => {
  it('prunes undeclared fields (but never apiVersion, kind, metadata) and reports them', () => {
    const obj = {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'p' },
      spec: { addresses: ['192.0.2.0/24'], typo: 1, extra: { anything: 1 }, labels: { a: 'b' } },
      bogus: true,
    };
    expect(prune(obj, schema)).toEqual(['spec.typo', 'bogus']);
    expect(obj).toEqual({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'p' },
      spec: { addresses: ['192.0.2.0/24'], extra: { anything: 1 }, labels: { a: 'b' } },
    });
  });

  it('applies defaults to missing properties only', () => {
    const obj = { spec: { addresses: ['192.0.2.0/24'], avoidBuggyIPs: true } };
    applyDefaults(obj, schema);
    expect(obj.spec).toEqual({ addresses: ['192.0.2.0/24'], autoAssign: true, avoidBuggyIPs: true });
  });

  it('accepts a valid object', () => {
    expect(validateSchema({ metadata: { name: 'x' }, spec: { addresses: ['192.0.2.0/24'], priority: 5, mode: 'bgp', port: 'http' } }, schema)).toEqual([]);
  });

  it.each([
    [{ spec: {} }, 'spec.addresses', 'Required'],
    [{ spec: { addresses: [] } }, 'spec.addresses', 'Invalid'],
    [{ spec: { addresses: 'x' } }, 'spec.addresses', 'Invalid'],
    [{ spec: { addresses: ['NOPE'] } }, 'spec.addresses[0]', 'Invalid'],
    [{ spec: { addresses: ['1.2.3.4'], priority: 101 } }, 'spec.priority', 'Invalid'],
    [{ spec: { addresses: ['1.2.3.4'], priority: 1.5 } }, 'spec.priority', 'Invalid'],
    [{ spec: { addresses: ['1.2.3.4'], mode: 'bfd' } }, 'spec.mode', 'NotSupported'],
    [{ spec: { addresses: ['1.2.3.4'], port: true } }, 'spec.port', 'Invalid'],
    [{ spec: { addresses: ['1.2.3.4'], labels: { a: 1 } } }, 'spec.labels.a', 'Invalid'],
  ])('reports %j at %s', (obj, field, type) => {
    const errs = validateSchema(obj, schema);
    expect(errs).toEqual(expect.arrayContaining([expect.objectContaining({ field, type })]));
  });

  it('renders type errors as the apiserver does', () => {
    const [e] = validateSchema({ spec: { addresses: 'x' } }, schema);
    expect(e?.detail).toBe('spec.addresses in body must be of type array: "string"');
  });
});
