import { ApiError } from './errors.js';
import { decodeProtobufObject } from './protobuf.js';

/**
 * Request bodies captured from kubectl 1.32 (`kubectl create namespace metallb-system`,
 * `create configmap config --from-literal=config='peers: []' --from-literal=b=2`,
 * `create secret generic memberlist --from-literal=secretkey=c2VjcmV0`,
 * `create service loadbalancer web --tcp=80:8080`, `create serviceaccount controller`).
 */
const CAPTURED = {
  namespace: '6b3873000a0f0a02763112094e616d65737061636512260a1e0a0e6d6574616c6c622d73797374656d12001a0022002a0032003800420012001a020a001a002200',
  configmap:
    '6b3873000a0f0a0276311209436f6e6669674d617012430a240a06636f6e66696712001a0e6d6574616c6c622d73797374656d22002a0032003800420012060a016212013212130a06636f6e666967120970656572733a205b5d1a002200',
  secret:
    '6b3873000a0c0a027631120653656372657412430a280a0a6d656d6265726c69737412001a0e6d6574616c6c622d73797374656d22002a0032003800420012150a097365637265746b657912086332566a636d56301a001a002200',
  service:
    '6b3873000a0d0a027631120753657276696365127a0a2d0a0377656212001a0e6d6574616c6c622d73797374656d22002a003200380042005a0a0a03617070120377656212450a1b0a0738302d38303830120354435018502207080010903f1a002800120a0a0361707012037765621a00220c4c6f616442616c616e6365723a00420052005a00600068001a020a001a002200',
  serviceaccount: '6b3873000a140a027631120e536572766963654163636f756e74122a0a280a0a636f6e74726f6c6c657212001a0e6d6574616c6c622d73797374656d22002a003200380042001a002200',
};

const decode = (hex: string): Record<string, unknown> => decodeProtobufObject(Buffer.from(hex, 'hex'));

describe('protobuf request bodies', () => {
  it('decodes a Namespace', () => {
    expect(decode(CAPTURED.namespace)).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'metallb-system' } });
  });

  it('decodes a ConfigMap with its data map', () => {
    expect(decode(CAPTURED.configmap)).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'config', namespace: 'metallb-system' },
      data: { b: '2', config: 'peers: []' },
    });
  });

  it('decodes a Secret, its bytes becoming base64 as in JSON', () => {
    expect(decode(CAPTURED.secret)).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'memberlist', namespace: 'metallb-system' },
      data: { secretkey: Buffer.from('c2VjcmV0').toString('base64') },
    });
  });

  it('decodes a Service with ports, int-or-string target port and selector', () => {
    expect(decode(CAPTURED.service)).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'metallb-system', labels: { app: 'web' } },
      spec: { ports: [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 }], selector: { app: 'web' }, type: 'LoadBalancer' },
    });
  });

  it('decodes a ServiceAccount', () => {
    expect(decode(CAPTURED.serviceaccount)).toEqual({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'controller', namespace: 'metallb-system' } });
  });

  it('refuses kinds it has no table for, and malformed input', () => {
    // The Namespace capture with its kind renamed to "Namespacf" (same length).
    const other = CAPTURED.namespace.replace(Buffer.from('Namespace').toString('hex'), Buffer.from('Namespacf').toString('hex'));
    expect(() => decode(other)).toThrow(ApiError);
    expect(() => decode('00112233')).toThrow('missing the k8s protobuf magic prefix');
    expect(() => decode(CAPTURED.configmap.slice(0, 60))).toThrow(/truncated/);
  });
});
