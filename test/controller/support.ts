/**
 * What the controller tests share: an API server double with our CRDs installed and the
 * metallb-system namespace, a KubeApi bound to it, and configuration helpers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ClientKube, RESOURCES, type KubeObject } from '../../kube/client.js';
import { Ledger } from '../../webhook/claims.js';
import { Controller } from '../../webhook/controller.js';
import { startApiServer, type ApiServer } from '../apiserver/index.js';
import { kubeConfigFor } from '../apiserver/testing.js';
import { parseConfig, type Pool } from '../../core/config/index.js';

const crdDir = fileURLToPath(new URL('../../manifests/crds/', import.meta.url));

/** A double with every metallb.io CRD and the metallb-system namespace. */
export interface Cluster {
  api: ApiServer;
  kube: ClientKube;
  /** Another client, as a second replica would have. */
  newKube(): ClientKube;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<Cluster> {
  const api = await startApiServer();
  const files = readdirSync(crdDir).filter((f) => f.endsWith('.yaml'));
  if (files.length === 0) throw new Error(`no CRDs found in ${crdDir}`);
  for (const f of files) await api.store.create(parse(readFileSync(join(crdDir, f), 'utf8')) as KubeObject as never);
  await api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'metallb-system' } } as never);
  const clients: ClientKube[] = [];
  const newKube = () => {
    const k = new ClientKube(kubeConfigFor(api));
    clients.push(k);
    return k;
  };
  const kube = newKube();
  // Wait until the IPClaim CRD is served.
  for (let i = 0; i < 50; i++) {
    try {
      await kube.list(RESOURCES.ipClaims);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    api,
    kube,
    newKube,
    async stop() {
      for (const c of clients) c.close();
      await api.stop();
    },
  };
}

/** Pools from metallb.io IPAddressPool specs, through the real parser. */
export function pools(specs: Record<string, Record<string, unknown>>): Pool[] {
  const resources = Object.entries(specs).map(([name, spec]) => ({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name, namespace: 'metallb-system' },
    spec,
  }));
  const { config, errors } = parseConfig({ resources });
  if (errors.length > 0) throw new Error(errors.map((e) => e.message).join('; '));
  return config.pools;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One controller replica that leads from the start, with its own client and ledger. */
export class LeadingReplica {
  readonly kube: ClientKube;
  readonly ledger: Ledger;
  readonly controller: Controller;

  constructor(cluster: Cluster, options: { reservationGraceMs: number; reapMs?: number }) {
    this.kube = cluster.newKube();
    this.ledger = new Ledger(this.kube);
    this.controller = new Controller({
      kube: this.kube,
      ledger: this.ledger,
      namespace: 'metallb-system',
      reservationGraceMs: options.reservationGraceMs,
      reapMs: options.reapMs ?? 200,
    });
  }

  async start(): Promise<this> {
    await this.ledger.start();
    await this.controller.start();
    this.controller.setLeading(true);
    return this;
  }

  async stop(): Promise<void> {
    await this.controller.stop();
    this.ledger.stop();
  }
}
