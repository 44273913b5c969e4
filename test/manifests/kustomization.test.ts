/**
 * manifests/kustomization.yaml installs everything under manifests/: every YAML file there is
 * reachable from it (nothing forgotten), everything it names exists, and the real kustomize (built
 * into kubectl) renders exactly the objects of those files, namespaced ones in metallb-system.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isKubeObject, loadYaml, manifestsDir, yamlFilesUnder, type KubeObject } from './support.js';

interface Kustomization {
  resources?: string[];
  components?: string[];
  patches?: { path?: string }[];
  configurations?: string[];
}

/**
 * The files a kustomization uses, relative to manifests/: its resources (files, or folders with a
 * kustomization of their own), components, patch and configuration files, and those kustomizations.
 */
function referencedFiles(kustomizationFile: string, problems: string[]): { file: string; resource: boolean }[] {
  const [k] = loadYaml(kustomizationFile) as Kustomization[];
  const base = dirname(kustomizationFile);
  const out = [{ file: relative(manifestsDir, kustomizationFile), resource: false }];
  const entries = [
    ...(k?.resources ?? []).map((e) => ({ e, resource: true })),
    ...(k?.components ?? []).map((e) => ({ e, resource: true })),
    ...(k?.patches ?? []).flatMap((p) => (p.path ? [{ e: p.path, resource: false }] : [])),
    ...(k?.configurations ?? []).map((e) => ({ e, resource: false })),
  ];
  for (const { e, resource } of entries) {
    const full = normalize(join(base, e));
    if (!existsSync(full)) problems.push(`${relative(manifestsDir, kustomizationFile)} names ${e}, which does not exist`);
    else if (statSync(full).isDirectory()) {
      const nested = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((n) => join(full, n)).find((f) => existsSync(f));
      if (nested) out.push(...referencedFiles(nested, problems));
      else problems.push(`${e} is a folder without a kustomization`);
    } else out.push({ file: relative(manifestsDir, full), resource });
  }
  return out;
}

const key = (o: KubeObject): string => `${o.kind}/${o.metadata.name}`;

describe('manifests/kustomization.yaml', () => {
  it('uses every YAML file under manifests/, each once, and names none that is missing', () => {
    const problems: string[] = [];
    const used = referencedFiles(join(manifestsDir, 'kustomization.yaml'), problems).map((r) => r.file);
    expect(problems).toEqual([]);
    const onDisk = yamlFilesUnder(manifestsDir);
    expect(onDisk.length).toBeGreaterThan(1);
    expect([...used].sort()).toEqual(onDisk);
  });

  it('renders with the real kustomize (kubectl kustomize) to exactly the objects of the files', () => {
    const out = execFileSync('kubectl', ['kustomize', manifestsDir], { encoding: 'utf8' });
    const rendered = parseAllDocuments(out)
      .map((d) => d.toJS() as unknown)
      .filter(isKubeObject);
    const fromFiles = referencedFiles(join(manifestsDir, 'kustomization.yaml'), [])
      .filter((r) => r.resource)
      .flatMap((r) => loadYaml(join(manifestsDir, r.file)))
      .filter(isKubeObject);
    expect(rendered.map(key).sort()).toEqual(fromFiles.map(key).sort());
    expect(rendered.length).toBeGreaterThan(1);

    // kustomize changes nothing in a CRD, and puts every namespaced object in metallb-system.
    const byKey = new Map(fromFiles.map((o) => [key(o), o]));
    for (const o of rendered) {
      if (o.kind === 'CustomResourceDefinition') expect(o).toEqual(byKey.get(key(o)));
      else if (o.kind !== 'Namespace' && !o.kind.startsWith('Cluster') && !o.kind.endsWith('WebhookConfiguration'))
        expect({ object: key(o), namespace: o.metadata.namespace }).toEqual({ object: key(o), namespace: 'metallb-system' });
    }
  });
});
