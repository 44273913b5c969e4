/**
 * The key the node agents' gossip membership is authenticated with: the Secret `memberlist`,
 * key `secretkey`, in our namespace (MetalLB's names, so a Secret made by MetalLB's install
 * instructions, `kubectl create secret generic memberlist --from-literal=secretkey=...`, keeps
 * working). Static YAML cannot hold a random key that differs per install, so the controller
 * creates it at start when it is missing, as MetalLB's controller does; the agents mount it.
 * An existing Secret is never touched (an operator may rotate it by hand).
 */
import { randomBytes } from 'node:crypto';
import { isKubeError, RESOURCES, type KubeApi } from './client.js';

export const MEMBERLIST_SECRET = 'memberlist';
export const MEMBERLIST_SECRET_KEY = 'secretkey';

/**
 * Creates the Secret with a fresh random key unless it exists. Returns true when it created
 * it. Two replicas racing: one create wins, the other meets 409 and keeps the winner's key.
 */
export async function ensureMemberlistSecret(kube: KubeApi, namespace: string, name = MEMBERLIST_SECRET): Promise<boolean> {
  if (await kube.get(RESOURCES.secrets, name, namespace)) return false;
  // 32 random bytes, written as base64 text (what `openssl rand -base64 32` gives an operator).
  const key = randomBytes(32).toString('base64');
  try {
    await kube.create(RESOURCES.secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'metallb', 'app.kubernetes.io/component': 'agent' } },
      type: 'Opaque',
      data: { [MEMBERLIST_SECRET_KEY]: Buffer.from(key).toString('base64') },
    });
    return true;
  } catch (e) {
    if (isKubeError(e, 409)) return false;
    throw e;
  }
}
