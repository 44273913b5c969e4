/**
 * Who may write IPClaims. A claim decides which Service holds an IP: whoever can create, change
 * or delete one can take an address from a Service or hand it to another. RBAC grants the write
 * verbs only to the controller's ServiceAccount (manifests/rbac/controller.yaml); this validating
 * handler is the second line, for roles broader than ours (wildcards, aggregated roles): CREATE,
 * UPDATE and DELETE of `ipclaims.metallb.io` are refused for everyone but
 *
 * - the controller (`system:serviceaccount:<namespace>:controller`), for everything, and
 * - the garbage collector, which deletes a claim whose Service is gone (the claim's owner
 *   reference) and strips owner references when orphaning: DELETE, and UPDATE that leaves the
 *   spec and annotations as they were.
 *
 * The webhook configuration (manifests/webhooks/validating.yaml) does not even send the
 * controller's and the garbage collector's requests (a matchCondition on the username), so the
 * controller never waits on its own webhook to write a claim; the check here holds when that
 * condition is missing or edited.
 */
import { isDeepStrictEqual } from 'node:util';
import type { AdmissionHandler, AdmissionRequest } from './review.js';

/** The controller's ServiceAccount, as named in manifests/rbac/serviceaccounts.yaml. */
export const CONTROLLER_SERVICE_ACCOUNT = 'controller';

/** The username the API server gives a ServiceAccount's requests. */
export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/**
 * The garbage collector's identities: its own ServiceAccount when kube-controller-manager runs
 * with --use-service-account-credentials (kubeadm's default), the manager's user otherwise.
 */
export const GARBAGE_COLLECTORS: readonly string[] = ['system:serviceaccount:kube-system:generic-garbage-collector', 'system:kube-controller-manager'];

export interface IPClaimAdmissionOptions {
  /** Username of the controller: `serviceAccountUser(namespace, CONTROLLER_SERVICE_ACCOUNT)`. */
  controllerUser: string;
}

type Fields = Record<string, unknown>;
const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What an UPDATE by the garbage collector may not change: the claim itself, as opposed to its metadata. */
function claimContent(obj: Fields | undefined): unknown {
  const meta = isMap(obj?.metadata) ? obj.metadata : {};
  return { spec: obj?.spec, annotations: meta.annotations ?? {}, labels: meta.labels ?? {} };
}

export class IPClaimAdmission {
  constructor(private readonly options: IPClaimAdmissionOptions) {}

  /** Validating, CREATE, UPDATE and DELETE of ipclaims.metallb.io. */
  readonly validate: AdmissionHandler = (request) => Promise.resolve(this.decide(request));

  private decide(request: AdmissionRequest): { allowed: boolean; code?: number; message?: string } {
    const { operation } = request;
    if (operation !== 'CREATE' && operation !== 'UPDATE' && operation !== 'DELETE') return { allowed: true };
    const user = request.userInfo.username ?? '';
    if (user === this.options.controllerUser) return { allowed: true };
    if (GARBAGE_COLLECTORS.includes(user)) {
      if (operation === 'DELETE') return { allowed: true };
      if (operation === 'UPDATE' && isDeepStrictEqual(claimContent(request.object), claimContent(request.oldObject))) return { allowed: true };
    }
    const verb = { CREATE: 'create', UPDATE: 'change', DELETE: 'delete' }[operation];
    const who = user === '' ? 'an anonymous user' : user;
    return {
      allowed: false,
      code: 403,
      message:
        `IPClaims are written only by the MetalLB controller (${this.options.controllerUser}): ${who} may not ${verb} IPClaim ${JSON.stringify(request.name)}, ` +
        `because a claim decides which Service holds an IP. To repair a claim by hand, act as the controller (kubectl --as=${this.options.controllerUser})`,
    };
  }
}
