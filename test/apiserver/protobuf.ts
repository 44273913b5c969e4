/**
 * Decoding of the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`) for the
 * objects kubectl's generators send that way: `kubectl create namespace | configmap | secret |
 * service | serviceaccount` go through client-go's typed clients, which POST protobuf.
 *
 * The envelope is the magic `k8s\0` followed by a runtime.Unknown message (typeMeta, raw);
 * `raw` is the object's message, decoded here with hand-written field tables taken from
 * k8s.io/api core/v1 and k8s.io/apimachinery meta/v1 generated.proto. Go's generated code
 * writes non-pointer fields even when empty, so zero values of such fields are dropped to get
 * the JSON a client would have sent (`omitempty`); pointer fields keep their zero values.
 * Other kinds are a 415, naming what is supported.
 */
import { unsupportedMediaType } from './errors.js';

type Scalar = 'string' | 'int' | 'bool' | 'bytes' | 'time' | 'intOrString';

/** One field of a message table. */
interface Field {
  name: string;
  type: Scalar | Message;
  repeated?: boolean;
  /** A map<string, string|bytes> field (entries are messages {1: key, 2: value}). */
  map?: 'string' | 'bytes';
  /** Keep the zero value: the Go field is a pointer (or has no omitempty). */
  keepZero?: boolean;
}

/** Field number -> field. */
type Message = { [field: number]: Field };

const TYPE_META: Message = { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } };
const UNKNOWN: Message = {
  1: { name: 'typeMeta', type: TYPE_META },
  2: { name: 'raw', type: 'bytes' },
  3: { name: 'contentEncoding', type: 'string' },
  4: { name: 'contentType', type: 'string' },
};

const OWNER_REFERENCE: Message = {
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'controller', type: 'bool', keepZero: true },
  7: { name: 'blockOwnerDeletion', type: 'bool', keepZero: true },
};

const OBJECT_META: Message = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  4: { name: 'selfLink', type: 'string' },
  5: { name: 'uid', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'generation', type: 'int' },
  8: { name: 'creationTimestamp', type: 'time' },
  9: { name: 'deletionTimestamp', type: 'time' },
  10: { name: 'deletionGracePeriodSeconds', type: 'int', keepZero: true },
  11: { name: 'labels', type: 'string', map: 'string' },
  12: { name: 'annotations', type: 'string', map: 'string' },
  13: { name: 'ownerReferences', type: OWNER_REFERENCE, repeated: true },
  14: { name: 'finalizers', type: 'string', repeated: true },
};

const OBJECT_REFERENCE: Message = {
  1: { name: 'kind', type: 'string' },
  2: { name: 'namespace', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'fieldPath', type: 'string' },
};

const SERVICE_PORT: Message = {
  1: { name: 'name', type: 'string' },
  2: { name: 'protocol', type: 'string' },
  3: { name: 'port', type: 'int', keepZero: true },
  4: { name: 'targetPort', type: 'intOrString' },
  5: { name: 'nodePort', type: 'int' },
  6: { name: 'appProtocol', type: 'string', keepZero: true },
};

const SERVICE_SPEC: Message = {
  1: { name: 'ports', type: SERVICE_PORT, repeated: true },
  2: { name: 'selector', type: 'string', map: 'string' },
  3: { name: 'clusterIP', type: 'string' },
  4: { name: 'type', type: 'string' },
  5: { name: 'externalIPs', type: 'string', repeated: true },
  7: { name: 'sessionAffinity', type: 'string' },
  8: { name: 'loadBalancerIP', type: 'string' },
  9: { name: 'loadBalancerSourceRanges', type: 'string', repeated: true },
  10: { name: 'externalName', type: 'string' },
  11: { name: 'externalTrafficPolicy', type: 'string' },
  12: { name: 'healthCheckNodePort', type: 'int' },
  13: { name: 'publishNotReadyAddresses', type: 'bool' },
  14: { name: 'sessionAffinityConfig', type: { 1: { name: 'clientIP', type: { 1: { name: 'timeoutSeconds', type: 'int', keepZero: true } } } } },
  17: { name: 'ipFamilyPolicy', type: 'string', keepZero: true },
  18: { name: 'clusterIPs', type: 'string', repeated: true },
  19: { name: 'ipFamilies', type: 'string', repeated: true },
  20: { name: 'allocateLoadBalancerNodePorts', type: 'bool', keepZero: true },
  21: { name: 'loadBalancerClass', type: 'string', keepZero: true },
  22: { name: 'internalTrafficPolicy', type: 'string', keepZero: true },
  23: { name: 'trafficDistribution', type: 'string', keepZero: true },
};

/** The kinds that can arrive as protobuf, by `apiVersion/kind`. Status is never decoded: create ignores it. */
const KINDS: Record<string, Message> = {
  'v1/Namespace': { 1: { name: 'metadata', type: OBJECT_META }, 2: { name: 'spec', type: { 1: { name: 'finalizers', type: 'string', repeated: true } } } },
  'v1/ConfigMap': {
    1: { name: 'metadata', type: OBJECT_META },
    2: { name: 'data', type: 'string', map: 'string' },
    3: { name: 'binaryData', type: 'bytes', map: 'bytes' },
    4: { name: 'immutable', type: 'bool', keepZero: true },
  },
  'v1/Secret': {
    1: { name: 'metadata', type: OBJECT_META },
    2: { name: 'data', type: 'bytes', map: 'bytes' },
    3: { name: 'type', type: 'string' },
    4: { name: 'stringData', type: 'string', map: 'string' },
    5: { name: 'immutable', type: 'bool', keepZero: true },
  },
  'v1/Service': { 1: { name: 'metadata', type: OBJECT_META }, 2: { name: 'spec', type: SERVICE_SPEC } },
  'v1/ServiceAccount': {
    1: { name: 'metadata', type: OBJECT_META },
    2: { name: 'secrets', type: OBJECT_REFERENCE, repeated: true },
    3: { name: 'imagePullSecrets', type: { 1: { name: 'name', type: 'string' } }, repeated: true },
    4: { name: 'automountServiceAccountToken', type: 'bool', keepZero: true },
  },
};

/** The media type of the protobuf encoding. */
export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  }

  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
}

/** A varint as a signed 64-bit number (int32/int64 fields are two's complement). */
function signed(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function decodeTime(buf: Buffer): string | undefined {
  const r = new Reader(buf);
  let seconds = 0;
  while (!r.done) {
    const key = Number(r.varint());
    if (key >> 3 === 1 && (key & 7) === 0) seconds = signed(r.varint());
    else r.skip(key & 7);
  }
  return seconds === 0 ? undefined : new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function decodeIntOrString(buf: Buffer): number | string {
  const r = new Reader(buf);
  let type = 0;
  let intVal = 0;
  let strVal = '';
  while (!r.done) {
    const key = Number(r.varint());
    const field = key >> 3;
    if (field === 1) type = signed(r.varint());
    else if (field === 2) intVal = signed(r.varint());
    else if (field === 3) strVal = r.bytes().toString('utf8');
    else r.skip(key & 7);
  }
  return type === 1 ? strVal : intVal;
}

function isZero(v: unknown): boolean {
  return v === '' || v === 0 || v === false || v === undefined || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
}

function decodeMessage(buf: Buffer, table: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(buf);
  while (!r.done) {
    const key = Number(r.varint());
    const number = key >> 3;
    const wire = key & 7;
    const f = table[number];
    if (!f) {
      r.skip(wire);
      continue;
    }
    if (f.map) {
      const entry = new Reader(r.bytes());
      let k = '';
      let v: Buffer = Buffer.alloc(0);
      while (!entry.done) {
        const ek = Number(entry.varint());
        if (ek >> 3 === 1) k = entry.bytes().toString('utf8');
        else if (ek >> 3 === 2) v = entry.bytes();
        else entry.skip(ek & 7);
      }
      const map = (out[f.name] ?? {}) as Record<string, string>;
      map[k] = f.map === 'bytes' ? v.toString('base64') : v.toString('utf8');
      out[f.name] = map;
      continue;
    }
    let value: unknown;
    if (typeof f.type === 'object') value = decodeMessage(r.bytes(), f.type);
    else if (f.type === 'string') value = r.bytes().toString('utf8');
    else if (f.type === 'bytes') value = r.bytes().toString('base64');
    else if (f.type === 'int') value = signed(r.varint());
    else if (f.type === 'bool') value = r.varint() !== 0n;
    else if (f.type === 'time') value = decodeTime(r.bytes());
    else value = decodeIntOrString(r.bytes());
    if (f.repeated) {
      const list = (out[f.name] ?? []) as unknown[];
      list.push(value);
      out[f.name] = list;
    } else if (!isZero(value) || (f.keepZero && value !== undefined)) {
      out[f.name] = value;
    }
  }
  return out;
}

/**
 * Decodes a protobuf-encoded object into its JSON form (with apiVersion and kind); throws a 415
 * for kinds without a table, or a plain Error for malformed bytes.
 */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new Error('missing the k8s protobuf magic prefix');
  const unknown = decodeMessage(body.subarray(4), UNKNOWN);
  const typeMeta = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const table = KINDS[`${typeMeta.apiVersion ?? ''}/${typeMeta.kind ?? ''}`];
  if (!table) {
    throw unsupportedMediaType(['application/json', 'application/yaml', `${PROTOBUF} (only for ${Object.keys(KINDS).join(', ')} in this API server double)`]);
  }
  const raw = Buffer.from(String(unknown.raw ?? ''), 'base64');
  return { apiVersion: typeMeta.apiVersion, kind: typeMeta.kind, ...decodeMessage(raw, table) };
}
