/**
 * AF_PACKET sockets: whole Ethernet frames in and out of one interface. `PacketSocket` is the
 * narrow interface the speaker takes (tests pass a fake); `openPacketSocket` opens a real one
 * through the Node-API addon in native/packet (built by `npm ci`, see native/packet/README.md).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a received frame was headed (linux/if_packet.h PACKET_*; the kernel's sll_pkttype). */
export const PacketType = {
  /** To our MAC. */
  host: 0,
  broadcast: 1,
  multicast: 2,
  /** To another host's MAC, seen because the interface is promiscuous. */
  otherHost: 3,
  /** Sent from this host (ours or the kernel's), looped back to packet sockets. */
  outgoing: 4,
} as const;

/** One classic BPF instruction (linux/filter.h struct sock_filter). */
export interface BpfInstruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** What to open. */
export interface PacketSocketOptions {
  /** Interface name, e.g. `eth0`. */
  readonly interface: string;
  /** EtherType to receive (EtherType.arp, EtherType.ipv6). */
  readonly protocol: number;
  /** Frames the filter rejects never wake the process. */
  readonly filter?: readonly BpfInstruction[];
  /** One received frame and where it was headed (PacketType). Runs on the event loop. */
  readonly onFrame: (frame: Buffer, packetType: number) => void;
  /** A receive failed (e.g. ENETDOWN when the link went down); the socket stays open. */
  readonly onError: (error: Error) => void;
}

/** An open AF_PACKET socket bound to one interface and EtherType. */
export interface PacketSocket {
  /** Sends one whole frame (Ethernet header included). Throws with the errno's code on failure. */
  send(frame: Buffer): void;
  /** Receive frames sent to this Ethernet multicast group (6 bytes). */
  addMembership(mac: Buffer): void;
  dropMembership(mac: Buffer): void;
  /** Stops receiving and closes the socket; idempotent. */
  close(): void;
}

/** Opens a socket; throws (code EPERM without CAP_NET_RAW, ENODEV for an unknown interface). */
export type OpenPacketSocket = (options: PacketSocketOptions) => PacketSocket;

interface Addon {
  PacketSocket: new (options: {
    interface: string;
    protocol: number;
    filter?: Buffer;
    onFrame: PacketSocketOptions['onFrame'];
    onError: PacketSocketOptions['onError'];
  }) => PacketSocket;
}

let addon: Addon | undefined;

/** The repository root, whether this module runs from agent/layer2 or dist/agent/layer2. */
const repoRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/dist\/$/, '');
/** Where node-gyp puts the addon. */
export const ADDON_PATH = join(repoRoot, 'native/packet/build/Release/packet.node');

function loadAddon(): Addon {
  if (!addon) {
    if (!existsSync(ADDON_PATH)) {
      throw new Error(`the AF_PACKET addon is not built (${ADDON_PATH} is missing): run \`npm ci\` or \`npm run install\` (needs python3, make and g++)`);
    }
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  }
  return addon;
}

/** Opens a real AF_PACKET socket. The addon is loaded on first use, so importing this module costs nothing. */
export const openPacketSocket: OpenPacketSocket = (options) => {
  const { PacketSocket: Socket } = loadAddon();
  return new Socket({
    interface: options.interface,
    protocol: options.protocol,
    ...(options.filter && { filter: encodeBpf(options.filter) }),
    onFrame: options.onFrame,
    onError: options.onError,
  });
};

/** struct sock_filter[] in the machine's byte order, as SO_ATTACH_FILTER takes it. */
export function encodeBpf(program: readonly BpfInstruction[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  program.forEach((insn, i) => {
    const at = i * 8;
    if (little) {
      buf.writeUInt16LE(insn.code, at);
      buf.writeUInt32LE(insn.k >>> 0, at + 4);
    } else {
      buf.writeUInt16BE(insn.code, at);
      buf.writeUInt32BE(insn.k >>> 0, at + 4);
    }
    buf[at + 2] = insn.jt;
    buf[at + 3] = insn.jf;
  });
  return buf;
}

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD_H_ABS = 0x28; // BPF_LD | BPF_H | BPF_ABS
const BPF_LD_B_ABS = 0x30; // BPF_LD | BPF_B | BPF_ABS
const BPF_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_RET_K = 0x06; // BPF_RET | BPF_K
const ACCEPT: BpfInstruction = { code: BPF_RET_K, jt: 0, jf: 0, k: 0x40000 };
const DROP: BpfInstruction = { code: BPF_RET_K, jt: 0, jf: 0, k: 0 };

/** Only ARP requests wake us: EtherType 0x0806 at byte 12, operation 1 at byte 20. */
export const ARP_REQUEST_FILTER: readonly BpfInstruction[] = [
  { code: BPF_LD_H_ABS, jt: 0, jf: 0, k: 12 },
  { code: BPF_JEQ_K, jt: 0, jf: 3, k: 0x0806 },
  { code: BPF_LD_H_ABS, jt: 0, jf: 0, k: 20 },
  { code: BPF_JEQ_K, jt: 0, jf: 1, k: 1 },
  ACCEPT,
  DROP,
];

/**
 * Only ICMPv6 neighbor solicitations wake us: EtherType 0x86dd, next header 58 at byte 20,
 * ICMPv6 type 135 at byte 54 (NDP carries no extension headers). Everything else an IPv6
 * socket would see (all of the node's IPv6 traffic) stays in the kernel.
 */
export const NEIGHBOR_SOLICITATION_FILTER: readonly BpfInstruction[] = [
  { code: BPF_LD_H_ABS, jt: 0, jf: 0, k: 12 },
  { code: BPF_JEQ_K, jt: 0, jf: 5, k: 0x86dd },
  { code: BPF_LD_B_ABS, jt: 0, jf: 0, k: 20 },
  { code: BPF_JEQ_K, jt: 0, jf: 3, k: 58 },
  { code: BPF_LD_B_ABS, jt: 0, jf: 0, k: 54 },
  { code: BPF_JEQ_K, jt: 0, jf: 1, k: 135 },
  ACCEPT,
  DROP,
];
