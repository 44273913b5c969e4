/**
 * The kubeconfig read as kubectl reads it, without client-node: --kubeconfig, else every file of
 * KUBECONFIG merged (for each name the first file wins, the first current-context set wins), else
 * ~/.kube/config. Loading client-node's KubeConfig costs most of a second (its module pulls in
 * every generated API client), so a user with a token, a client certificate or a basic-auth
 * password is served here; exec plugins and auth providers go to client-node (`needsClientNode`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import type { RequestOptions } from 'node:https';
import { load } from 'js-yaml';
import { UserError } from './base.js';

type Fields = Record<string, unknown>;
const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (m: Fields, k: string): string | undefined => (typeof m[k] === 'string' && m[k] !== '' ? m[k] : undefined);

/** A named entry (cluster or user) and the directory of the file it came from (relative paths). */
interface Entry {
  fields: Fields;
  dir: string;
}

/** The kubeconfig files merged. */
export interface Kubeconfig {
  files: string[];
  currentContext?: string;
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, { cluster?: string; user?: string; namespace?: string }>;
}

/** The files kubectl would read, or undefined when there is none (in a Pod: the in-cluster config). */
export function kubeconfigFiles(options: { kubeconfig?: string; env?: NodeJS.ProcessEnv }): string[] | undefined {
  const env = options.env ?? process.env;
  if (options.kubeconfig) {
    if (!existsSync(options.kubeconfig)) throw new UserError(`kubeconfig ${options.kubeconfig} does not exist (--kubeconfig)`);
    return [options.kubeconfig];
  }
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(delimiter).filter((f) => f !== '' && existsSync(f));
    if (files.length === 0) throw new UserError(`none of the files in KUBECONFIG exists (${env.KUBECONFIG})`);
    return files;
  }
  const file = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(file)) return [file];
  if (env.KUBERNETES_SERVICE_HOST) return undefined;
  throw new UserError(`no kubeconfig: ${file} does not exist and KUBECONFIG is not set; pass --kubeconfig`);
}

/** Read and merge the files. */
export function readKubeconfig(files: readonly string[]): Kubeconfig {
  const kc: Kubeconfig = { files: [...files], clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    let doc: unknown;
    try {
      // js-yaml, as client-node reads kubeconfigs: both readers take the same files (and it
      // reads one, with its long base64 lines, several times faster than the yaml package).
      doc = load(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UserError(`cannot read kubeconfig ${file}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0] ?? ''}`);
    }
    if (doc === null || doc === undefined) continue;
    if (!isMap(doc)) throw new UserError(`cannot read kubeconfig ${file}: not a kubeconfig (expected a mapping)`);
    const dir = dirname(file);
    const named = (key: string, inner: string, into: (name: string, fields: Fields) => void) => {
      for (const item of Array.isArray(doc[key]) ? doc[key] : []) {
        if (isMap(item) && typeof item.name === 'string' && isMap(item[inner])) into(item.name, item[inner]);
      }
    };
    named('clusters', 'cluster', (name, fields) => kc.clusters.has(name) || kc.clusters.set(name, { fields, dir }));
    named('users', 'user', (name, fields) => kc.users.has(name) || kc.users.set(name, { fields, dir }));
    named(
      'contexts',
      'context',
      (name, f) => kc.contexts.has(name) || kc.contexts.set(name, { cluster: text(f, 'cluster'), user: text(f, 'user'), namespace: text(f, 'namespace') }),
    );
    const current = text(doc, 'current-context');
    if (kc.currentContext === undefined && current) kc.currentContext = current;
  }
  return kc;
}

/** The context to use (--context, else the current one), checked. */
export function chooseContext(kc: Kubeconfig, wanted?: string): { name: string; cluster: Entry; user: Entry | undefined; namespace: string } {
  const name = wanted ?? kc.currentContext;
  if (wanted !== undefined && !kc.contexts.has(wanted)) {
    const known = [...kc.contexts.keys()];
    throw new UserError(`context "${wanted}" does not exist in the kubeconfig${known.length > 0 ? ` (contexts: ${known.join(', ')})` : ''}`);
  }
  if (!name) throw new UserError('the kubeconfig names no current context; pass --context');
  const context = kc.contexts.get(name);
  if (!context) throw new UserError(`the current context "${name}" is not defined in the kubeconfig; pass --context`);
  const cluster = context.cluster ? kc.clusters.get(context.cluster) : undefined;
  if (!cluster || !text(cluster.fields, 'server')) throw new UserError(`context "${name}" names a cluster the kubeconfig does not define`);
  return { name, cluster, user: context.user ? kc.users.get(context.user) : undefined, namespace: context.namespace ?? 'default' };
}

/** Whether this user needs client-node (an exec plugin or an auth provider: token refresh and caching). */
export function needsClientNode(user: Entry | undefined, cluster: Entry): boolean {
  return (user !== undefined && (isMap(user.fields.exec) || isMap(user.fields['auth-provider']))) || text(cluster.fields, 'proxy-url') !== undefined;
}

/**
 * What ClientKube reads of a KubeConfig (the current cluster's server, and the TLS material and
 * Authorization header of each request), for a user needing no client-node.
 */
export function lightKubeConfig(cluster: Entry, user: Entry | undefined) {
  const file = (e: Entry, key: string): Buffer | undefined => {
    const path = text(e.fields, key);
    if (!path) return undefined;
    const full = isAbsolute(path) ? path : join(e.dir, path);
    try {
      return readFileSync(full);
    } catch {
      throw new UserError(`cannot read ${key} ${full} named by the kubeconfig`);
    }
  };
  const data = (e: Entry, key: string): Buffer | undefined => {
    const v = text(e.fields, `${key}-data`);
    return v ? Buffer.from(v, 'base64') : file(e, key);
  };
  const server = text(cluster.fields, 'server') ?? '';
  const ca = data(cluster, 'certificate-authority');
  const insecure = cluster.fields['insecure-skip-tls-verify'] === true;
  const cert = user && data(user, 'client-certificate');
  const key = user && data(user, 'client-key');
  const tokenFile = user && text(user.fields, 'tokenFile');
  const username = user && text(user.fields, 'username');
  const password = user && text(user.fields, 'password');
  return {
    getCurrentCluster: () => ({ name: '', server, skipTLSVerify: insecure }),
    async applyToHTTPSOptions(opts: RequestOptions): Promise<void> {
      if (ca) opts.ca = ca;
      if (cert) opts.cert = cert;
      if (key) opts.key = key;
      if (insecure) opts.rejectUnauthorized = false;
      // A token file is read per request, as kubectl does (projected tokens rotate).
      const token = (user && text(user.fields, 'token')) ?? (tokenFile ? readFileSync(isAbsolute(tokenFile) ? tokenFile : join(user.dir, tokenFile), 'utf8').trim() : undefined);
      const headers = (opts.headers ?? {}) as Record<string, string>;
      if (token) headers.Authorization = `Bearer ${token}`;
      else if (username && password) headers.Authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      opts.headers = headers;
    },
  };
}
