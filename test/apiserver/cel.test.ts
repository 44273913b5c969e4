import { CelError, compileCel } from './cel.js';

const vars = ['object', 'oldObject', 'request'];
const svc = {
  metadata: { name: 'web', namespace: 'team-a', labels: { app: 'web' } },
  spec: { type: 'LoadBalancer', ports: [{ port: 80 }, { port: 443 }] },
};
const env = { object: svc, oldObject: null, request: { operation: 'CREATE', namespace: 'team-a' } };

describe('CEL subset', () => {
  it.each([
    ["object.spec.type == 'LoadBalancer'", true],
    ['object.spec.type != "LoadBalancer"', false],
    ['has(object.spec.loadBalancerClass)', false],
    ['!has(object.spec.loadBalancerClass) || object.spec.loadBalancerClass == "metallb.io/metallb"', true],
    ["request.operation in ['CREATE', 'UPDATE']", true],
    ['oldObject == null', true],
    ["object.metadata.namespace.startsWith('kube-')", false],
    ["!(object.metadata.namespace.startsWith('kube-'))", true],
    ["'app' in object.metadata.labels && object.metadata.labels['app'] == 'web'", true],
    ['size(object.spec.ports) == 2 && object.spec.ports.size() > 1', true],
    ['object.spec.ports.exists(p, p.port == 443)', true],
    ['object.spec.ports.all(p, p.port < 1000)', true],
    ['object.spec.ports.map(p, p.port) == [80, 443]', true],
    ['object.spec.ports.filter(p, p.port > 100).size() == 1', true],
    ['object.spec.ports.exists_one(p, p.port > 0)', false],
    ["object.metadata.name.matches('^w[a-z]+$')", true],
    ['1 + 2 * 3 == 7 && 7 / 2 == 3 && 7 % 2 == 1 && -1 < 0', true],
    ["object.spec.type == 'LoadBalancer' ? true : false", true],
    // CEL's && and || absorb an error when the other side decides.
    ["object.spec.missing == 'x' && false", false],
    ["true || object.spec.missing == 'x'", true],
    ["{'a': 1}.a == 1", true],
    ["string(1) == '1' && int('42') == 42", true],
  ])('%s => %s', (expr, expected) => {
    expect(compileCel(expr, vars).evaluate(env)).toBe(expected);
  });

  it.each([
    ["object.spec.loadBalancerClass == 'x'", /no such key: loadBalancerClass/],
    ['oldObject.spec.type == "x"', /no such key: spec/],
    ['object.spec.ports[5].port == 1', /index out of bounds/],
    ['object.spec.type < 3', /no such overload/],
  ])('%s is an evaluation error', (expr, message) => {
    expect(() => compileCel(expr, vars).evaluate(env)).toThrow(message);
  });

  it.each([
    ['object.spec.type ==', /Syntax error/],
    ['params.foo == 1', /undeclared reference to 'params'/],
    ["authorizer.group('').check()", /undeclared reference/],
    ['object.spec.type.lowerAscii().frobnicate()', /not in the API server double's CEL subset/],
    ['has(object)', /invalid argument to has\(\) macro/],
  ])('%s does not compile', (expr, message) => {
    expect(() => compileCel(expr, vars)).toThrow(CelError);
    expect(() => compileCel(expr, vars)).toThrow(message);
  });
});
