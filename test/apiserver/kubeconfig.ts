/**
 * The kubeconfig that points kubectl and client-node at the double: one cluster (server URL
 * and CA), one user (a bearer token), one context, current.
 */
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

/** What the kubeconfig says. */
export interface KubeconfigSpec {
  server: string;
  /** PEM of the CA that signed the server's certificate; absent for plain HTTP. */
  caPem?: string;
  token: string;
  /** Name of the cluster, user and context (default `metallb-ts-double`). */
  name?: string;
  namespace?: string;
}

/** The kubeconfig as YAML. */
export function kubeconfigYaml(spec: KubeconfigSpec): string {
  const name = spec.name ?? 'metallb-ts-double';
  const cluster: Record<string, string | boolean> = { server: spec.server };
  if (spec.caPem) cluster['certificate-authority-data'] = Buffer.from(spec.caPem).toString('base64');
  // client-node refuses a plain-HTTP server unless the cluster says insecure-skip-tls-verify.
  else if (spec.server.startsWith('http://')) cluster['insecure-skip-tls-verify'] = true;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name: `${name}-admin`, user: { token: spec.token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: spec.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes the kubeconfig with owner-only permissions (it holds a token). */
export async function writeKubeconfig(path: string, spec: KubeconfigSpec): Promise<void> {
  await writeFile(path, kubeconfigYaml(spec), { mode: 0o600 });
}
