/**
 * The node agent's manifests: a DaemonSet on the host network holding NET_RAW and
 * NET_BIND_SERVICE and nothing else, started with flags the agent accepts, its membership key
 * mounted from the Secret the controller creates, and RBAC that lets it write only its own
 * status (test/agent/rbac.test.ts checks the RBAC against the calls the agent really makes).
 */
import { dirname, join } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { readFlags } from '../../agent/flags.js';
import { MEMBERLIST_SECRET, MEMBERLIST_SECRET_KEY } from '../../kube/memberlist.js';
import { isKubeObject, loadYaml, manifestsDir, type KubeObject } from './support.js';

const objects: KubeObject[] = ['agent/daemonset.yaml', 'rbac/agent.yaml', 'rbac/controller.yaml', 'rbac/serviceaccounts.yaml'].flatMap((f) =>
  loadYaml(join(manifestsDir, f)).filter(isKubeObject),
);

const one = (kind: string, name: string): KubeObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
}
const rulesOf = (o: KubeObject): Rule[] => (o.rules as Rule[] | undefined) ?? [];
const grants = (role: KubeObject, group: string, resource: string, verb: string): boolean =>
  rulesOf(role).some((r) => (r.apiGroups ?? []).includes(group) && (r.resources ?? []).includes(resource) && (r.verbs ?? []).includes(verb) && !r.resourceNames);

describe('agent DaemonSet', () => {
  const ds = one('DaemonSet', 'agent') as unknown as DaemonSet;
  const pod = ds.spec?.template.spec;
  const c = pod?.containers[0];
  const env = (name: string) => c?.env?.find((e) => e.name === name);

  it('is valid against the upstream schema, one container of the image, on every node', () => {
    expect(() => new DaemonSet(structuredClone(ds) as never).validate()).not.toThrow();
    expect(ds.metadata?.namespace).toBe('metallb-system');
    expect(pod?.containers).toHaveLength(1);
    expect(c?.image).toBe('metallb-ts:latest');
    expect(c?.command).toEqual(['node', 'dist/agent/main.js']);
    expect(ds.spec?.selector.matchLabels).toEqual(ds.spec?.template.metadata?.labels);
    expect(pod?.serviceAccountName).toBe('agent');
    expect(() => one('ServiceAccount', 'agent')).not.toThrow();
    // Control-plane nodes too: which nodes announce is the L2Advertisement's business.
    expect(pod?.tolerations?.map((t) => t.key)).toEqual(expect.arrayContaining(['node-role.kubernetes.io/control-plane']));
  });

  it("runs on the host network with NET_RAW and NET_BIND_SERVICE and nothing else", () => {
    expect(pod?.hostNetwork).toBe(true);
    expect(pod?.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod?.hostPID).toBeFalsy();
    expect(pod?.hostIPC).toBeFalsy();
    expect(pod?.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    const sc = c?.securityContext;
    expect(sc?.privileged).toBeFalsy();
    expect(sc?.allowPrivilegeEscalation).toBe(false);
    expect(sc?.readOnlyRootFilesystem).toBe(true);
    expect(sc?.capabilities?.drop).toEqual(['ALL']);
    expect([...(sc?.capabilities?.add ?? [])].sort()).toEqual(['NET_BIND_SERVICE', 'NET_RAW']);
    // Root, on purpose: a non-root user gets no effective capabilities without ambient or file
    // capabilities, and allowPrivilegeEscalation: false rules file capabilities out (see the file).
    expect(sc?.runAsUser).toBe(0);
    expect(sc?.runAsNonRoot).toBe(false);
    // Nothing from the host's filesystem.
    expect(pod?.volumes?.filter((v) => v.hostPath)).toEqual([]);
  });

  it('gets its node, address and Pod from the downward API', () => {
    expect(env('NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
    expect(env('POD_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP');
    expect(env('HOST_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
    expect(env('POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(env('POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(env('POD_UID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.uid');
  });

  /** The container's args as the kubelet expands them, read by the agent's own flag parser. */
  const flags = () => {
    const downward = { NODE_NAME: 'node-1', POD_IP: '192.0.2.11', HOST_IP: '192.0.2.11', POD_NAMESPACE: 'metallb-system', POD_NAME: 'agent-x7k2p', POD_UID: 'a-uid' };
    const args = (c?.args ?? []).map((a) => a.replace(/\$\((\w+)\)/g, (_m, name: string) => downward[name as keyof typeof downward] ?? ''));
    return readFlags(args, downward);
  };

  it('starts the agent with flags it accepts: gossip on, its Pod as owner', () => {
    const f = flags();
    expect(f).toMatchObject({ nodeName: 'node-1', namespace: 'metallb-system', metricsPort: 7472, pod: { name: 'agent-x7k2p', uid: 'a-uid' } });
    expect(f.memberlist).toMatchObject({ bindAddress: '192.0.2.11', port: 7946 });
  });

  it('exposes the metrics port and the gossip port it is started with, and probes /readyz and /healthz there', () => {
    const f = flags();
    const monitoring = c?.ports?.find((p) => p.name === 'monitoring');
    expect(monitoring).toMatchObject({ containerPort: f.metricsPort, protocol: 'TCP' });
    expect(c?.ports?.find((p) => p.protocol === 'UDP')?.containerPort).toBe(f.memberlist?.port);
    expect(c?.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'monitoring' });
    expect(c?.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'monitoring' });
  });

  it('mounts the membership key from the Secret the controller creates, whole (rotations reach it), read-only', () => {
    const keyFile = flags().memberlist?.keyFile ?? '';
    const mount = c?.volumeMounts?.find((m) => m.mountPath === dirname(keyFile));
    expect(mount).toMatchObject({ readOnly: true });
    expect(mount?.subPath).toBeUndefined();
    expect(keyFile.endsWith(`/${MEMBERLIST_SECRET_KEY}`)).toBe(true);
    const volume = pod?.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.secret?.secretName).toBe(MEMBERLIST_SECRET);
    expect(volume?.secret?.optional).toBeFalsy();
    // The controller may create it (its Role, in the same namespace).
    expect(grants(one('Role', 'controller'), '', 'secrets', 'create')).toBe(true);
  });
});

describe('agent RBAC', () => {
  const cluster = one('ClusterRole', 'metallb-agent');
  const local = one('Role', 'agent');

  it('reads no Secret at all: the key arrives as a file', () => {
    for (const role of [cluster, local]) expect(rulesOf(role).filter((r) => (r.resources ?? []).includes('secrets'))).toEqual([]);
  });

  it('writes only events cluster-wide; its status objects only in its namespace', () => {
    const writes = ['create', 'update', 'patch', 'delete', 'deletecollection'];
    const clusterWrites = rulesOf(cluster).filter((r) => (r.verbs ?? []).some((v) => writes.includes(v)));
    expect(clusterWrites.flatMap((r) => r.resources)).toEqual(['events']);
    expect(local.metadata.namespace).toBe('metallb-system');
    for (const res of ['servicel2statuses', 'configurationstates']) {
      expect(grants(local, 'metallb.io', res, 'create')).toBe(true);
      expect(grants(cluster, 'metallb.io', res, 'create')).toBe(false);
    }
    expect(grants(local, 'metallb.io', 'servicel2statuses', 'delete')).toBe(true);
    expect(grants(local, 'metallb.io', 'ipclaims', 'create')).toBe(false);
    expect(grants(cluster, '', 'services', 'update')).toBe(false);
    expect(grants(cluster, '', 'services/status', 'patch')).toBe(false);
  });
});
