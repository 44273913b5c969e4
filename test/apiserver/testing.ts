/**
 * Helpers for tests that run against the API server double: a client-node KubeConfig, raw
 * HTTP requests (to see headers such as Warning), the real kubectl, and waiting for a
 * condition.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { ApiServer } from './index.js';

/** A client-node KubeConfig loaded from the double's kubeconfig file. */
export function kubeConfigFor(api: ApiServer): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(api.kubeconfigPath);
  return kc;
}

/** A raw response. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

/** Options of a raw request. */
export interface RawRequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Leave out the bearer token. */
  anonymous?: boolean;
  /** Aborts the request (the promise then rejects). */
  signal?: AbortSignal;
}

/** Sends one request to the double with its token, returning status, headers and body. */
export function rawRequest(api: ApiServer, method: string, path: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  const url = new URL(path, api.url);
  const payload = options.body === undefined ? undefined : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
  const headers: Record<string, string | number> = { Accept: 'application/json', ...(options.headers ?? {}) };
  if (!options.anonymous) headers.Authorization = `Bearer ${api.token}`;
  if (payload) {
    headers['Content-Type'] ??= 'application/json';
    headers['Content-Length'] = payload.length;
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, ...(api.caPem ? { ca: api.caPem } : {}), ...(options.signal ? { signal: options.signal } : {}), agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The outcome of a kubectl run. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for kubectl: its discovery cache lives with this server, never in ~/.kube. */
function kubectlEnv(api: ApiServer): NodeJS.ProcessEnv {
  return { ...process.env, KUBECACHEDIR: join(api.dir, 'kubectl-cache'), KUBECONFIG: '' };
}

/** Path of the kubectl binary (override with KUBECTL). */
export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

/** Runs `kubectl --kubeconfig PATH ARGS...`; never rejects on a non-zero exit. */
export function kubectl(api: ApiServer, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(KUBECTL, ['--kubeconfig', api.kubeconfigPath, ...args], { env: kubectlEnv(api), timeout: 20_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(err);
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Starts a long-running kubectl (e.g. `get -w`); the caller kills it. */
export function spawnKubectl(api: ApiServer, args: string[]): { child: ChildProcess; output: () => string; errors: () => string } {
  const child = spawn(KUBECTL, ['--kubeconfig', api.kubeconfigPath, ...args], { env: kubectlEnv(api), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return { child, output: () => out, errors: () => err };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The Status body of a failed client-node call (its `body` may be a string or an object). */
export function statusOf(e: unknown): { code?: number; reason?: string; message?: string; details?: Record<string, unknown> } {
  const body = (e as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as ReturnType<typeof statusOf>;
    } catch {
      return { message: body };
    }
  }
  return (body ?? {}) as ReturnType<typeof statusOf>;
}

/** The Status of a call that must fail, with the HTTP code; throws when the call succeeds. */
export async function failure(p: Promise<unknown>): Promise<ReturnType<typeof statusOf> & { httpCode: number }> {
  try {
    await p;
  } catch (e) {
    return { ...statusOf(e), httpCode: (e as { code: number }).code };
  }
  throw new Error('expected the call to fail');
}
