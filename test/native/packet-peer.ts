/**
 * A helper process for the packet tests: opens AF_PACKET sockets through the addon in the
 * network namespace it was started in, and reports every frame it receives.
 * Run as `ip netns exec NS node dist/test/native/packet-peer.js` (see test/layer2/rpc.ts).
 *
 * Requests: open { id, interface, protocol, filter?: 'arp-request' | 'neighbor-solicitation' },
 * send { id, frame (hex) }, join / leave { id, mac (hex) }, close { id }.
 * Events: ready, frame { id, frame (hex), type }, error { id, code, message }.
 */
import { ARP_REQUEST_FILTER, NEIGHBOR_SOLICITATION_FILTER, openPacketSocket, type PacketSocket } from '../../agent/layer2/packet-socket.js';
import { serve } from '../layer2/rpc.js';

const sockets = new Map<string, PacketSocket>();
const FILTERS = { 'arp-request': ARP_REQUEST_FILTER, 'neighbor-solicitation': NEIGHBOR_SOLICITATION_FILTER };

const socket = (id: unknown): PacketSocket => {
  const s = sockets.get(String(id));
  if (!s) throw new Error(`no socket ${String(id)}`);
  return s;
};

const rpc = serve({
  open: (r) => {
    const id = String(r.id);
    const filter = r.filter === undefined ? undefined : FILTERS[r.filter as keyof typeof FILTERS];
    sockets.set(
      id,
      openPacketSocket({
        interface: String(r.interface),
        protocol: Number(r.protocol),
        ...(filter && { filter }),
        onFrame: (frame, type) => rpc.emit('frame', { id, frame: frame.toString('hex'), type }),
        onError: (e) => rpc.emit('error', { id, code: (e as NodeJS.ErrnoException).code ?? null, message: e.message }),
      }),
    );
  },
  send: (r) => socket(r.id).send(Buffer.from(String(r.frame), 'hex')),
  join: (r) => socket(r.id).addMembership(Buffer.from(String(r.mac), 'hex')),
  leave: (r) => socket(r.id).dropMembership(Buffer.from(String(r.mac), 'hex')),
  close: (r) => socket(r.id).close(),
});
rpc.emit('ready');
