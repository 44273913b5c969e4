/** Who may write IPClaims: the handler on its own. */
import { CONTROLLER_SERVICE_ACCOUNT, GARBAGE_COLLECTORS, IPClaimAdmission, serviceAccountUser } from '../../webhook/ipclaims-admission.js';
import type { AdmissionRequest, Operation } from '../../webhook/review.js';

const CONTROLLER = 'system:serviceaccount:metallb-system:controller';
const handler = new IPClaimAdmission({ controllerUser: serviceAccountUser('metallb-system', CONTROLLER_SERVICE_ACCOUNT) });

const claim = (holders: string[], extra: Record<string, unknown> = {}) => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPClaim',
  metadata: { name: '192.0.2.5', annotations: { 'metallb.io/holder-requests': '{}' }, ...extra },
  spec: { ip: '192.0.2.5', pool: 'p', family: 'IPv4', holders: holders.map((h) => ({ namespace: 'shop', name: h })) },
});

function review(operation: Operation, username: string | undefined, object?: Record<string, unknown>, oldObject?: Record<string, unknown>): AdmissionRequest {
  return {
    uid: 'u',
    kind: { group: 'metallb.io', version: 'v1beta1', kind: 'IPClaim' },
    resource: { group: 'metallb.io', version: 'v1beta1', resource: 'ipclaims' },
    name: '192.0.2.5',
    operation,
    userInfo: username === undefined ? {} : { username, groups: ['system:authenticated'] },
    ...(object ? { object } : {}),
    ...(oldObject ? { oldObject } : {}),
    dryRun: false,
  };
}

describe('IPClaimAdmission', () => {
  test('the controller is system:serviceaccount:<namespace>:controller, as in manifests/rbac', () => {
    expect(serviceAccountUser('metallb-system', CONTROLLER_SERVICE_ACCOUNT)).toBe(CONTROLLER);
  });

  test.each<Operation>(['CREATE', 'UPDATE', 'DELETE'])('lets the controller %s a claim', async (op) => {
    const v = await handler.validate(review(op, CONTROLLER, op === 'DELETE' ? undefined : claim(['web']), op === 'CREATE' ? undefined : claim(['old'])));
    expect(v).toEqual({ allowed: true });
  });

  test.each<[Operation, string | undefined, string]>([
    ['CREATE', 'kubernetes-admin', 'kubernetes-admin may not create IPClaim "192.0.2.5"'],
    ['UPDATE', 'system:serviceaccount:shop:deployer', 'system:serviceaccount:shop:deployer may not change IPClaim "192.0.2.5"'],
    ['DELETE', 'alice', 'alice may not delete IPClaim "192.0.2.5"'],
    // Another namespace's "controller" ServiceAccount is somebody else.
    ['CREATE', 'system:serviceaccount:shop:controller', 'system:serviceaccount:shop:controller may not create'],
    // The agent reads claims; it never writes them.
    ['UPDATE', 'system:serviceaccount:metallb-system:agent', 'system:serviceaccount:metallb-system:agent may not change'],
    ['CREATE', undefined, 'an anonymous user may not create'],
  ])('refuses %s by %s, in one line naming who may and how to repair', async (op, user, message) => {
    const v = await handler.validate(review(op, user, op === 'DELETE' ? undefined : claim(['thief']), op === 'CREATE' ? undefined : claim(['web'])));
    expect(v).toMatchObject({ allowed: false, code: 403 });
    expect(v.message).toContain(message);
    expect(v.message).toMatch(/^IPClaims are written only by the MetalLB controller \(system:serviceaccount:metallb-system:controller\): /);
    expect(v.message).toContain(
      'because a claim decides which Service holds an IP. To repair a claim by hand, act as the controller (kubectl --as=system:serviceaccount:metallb-system:controller)',
    );
    expect(v.message).not.toContain('\n');
  });

  test.each(GARBAGE_COLLECTORS)('lets the garbage collector (%s) delete a claim and strip owner references, nothing more', async (gc) => {
    expect(await handler.validate(review('DELETE', gc, undefined, claim(['web'])))).toEqual({ allowed: true });
    const owned = claim(['web'], { ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'u1' }], finalizers: ['x'] });
    expect(await handler.validate(review('UPDATE', gc, claim(['web'], { finalizers: ['x'] }), owned))).toEqual({ allowed: true });
    expect(await handler.validate(review('UPDATE', gc, claim(['thief']), claim(['web'])))).toMatchObject({ allowed: false });
    const reannotated = claim(['web'], { annotations: { 'metallb.io/holder-requests': '{"shop/thief":{}}' } });
    expect(await handler.validate(review('UPDATE', gc, reannotated, claim(['web'])))).toMatchObject({ allowed: false });
    expect(await handler.validate(review('CREATE', gc, claim(['web'])))).toMatchObject({ allowed: false });
  });
});
