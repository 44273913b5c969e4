/** Helpers for the webhook server tests: a throwaway serving certificate and raw HTTPS calls. */
import { request } from 'node:https';
import { issueBundle, type CertificateBundle } from '../../webhook/certs.js';

export const SERVICE = 'metallb-webhook-service';
export const NAMESPACE = 'metallb-system';

/** A CA and serving certificate for the webhook Service, valid now. */
export function testBundle(): CertificateBundle {
  return issueBundle({ service: SERVICE, namespace: NAMESPACE, now: new Date(), validityMs: 24 * 3600_000 });
}

/** A response, with the body parsed as JSON when it is JSON. */
export interface HttpsResponse {
  status: number;
  contentType: string;
  text: string;
  json: unknown;
}

/** One request to the webhook server on 127.0.0.1, verified against ca as `servername`. */
export function httpsCall(port: number, ca: string, method: string, path: string, body?: string | Buffer): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca,
        servername: `${SERVICE}.${NAMESPACE}.svc`,
        agent: false,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
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
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
