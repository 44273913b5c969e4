/**
 * The node's network interfaces as the speaker needs them, read from sysfs, and which of them
 * may announce when the L2Advertisement names none.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMac } from './ethernet.js';

/** One interface of the node. */
export interface NetworkInterface {
  readonly name: string;
  readonly index: number;
  readonly mac: string;
  /** IFF_* flags (linux/if.h). */
  readonly flags: number;
  /** ARPHRD_* link type (linux/if_arp.h); 1 is Ethernet. */
  readonly linkType: number;
  /** Enslaved to a bridge or bond (has a `master`): the master answers for the link, not the port. */
  readonly enslaved: boolean;
}

/** IFF_* flags (linux/if.h). */
export const InterfaceFlag = {
  up: 0x1,
  broadcast: 0x2,
  loopback: 0x8,
  noArp: 0x80,
  multicast: 0x1000,
} as const;

const ARPHRD_ETHER = 1;

/**
 * Whether an interface may announce when none is named: up, Ethernet, broadcast-capable, not
 * loopback, not NOARP (tunnels, WireGuard), and not enslaved to a bridge or bond.
 */
export function isEligible(link: NetworkInterface): boolean {
  const f = link.flags;
  return (
    (f & InterfaceFlag.up) !== 0 &&
    (f & InterfaceFlag.broadcast) !== 0 &&
    (f & InterfaceFlag.loopback) === 0 &&
    (f & InterfaceFlag.noArp) === 0 &&
    link.linkType === ARPHRD_ETHER &&
    !link.enslaved &&
    isMac(link.mac) &&
    link.mac !== '00:00:00:00:00:00'
  );
}

/**
 * The interfaces of this network namespace from `/sys/class/net` (`ip netns exec` mounts the
 * namespace's own sysfs). An interface that vanishes while being read is left out.
 */
export function readInterfaces(sysfs = '/sys/class/net'): NetworkInterface[] {
  const links: NetworkInterface[] = [];
  for (const name of readdirSync(sysfs)) {
    const dir = join(sysfs, name);
    try {
      const read = (file: string): string => readFileSync(join(dir, file), 'utf8').trim();
      links.push({
        name,
        index: Number(read('ifindex')),
        mac: read('address').toLowerCase(),
        flags: Number.parseInt(read('flags'), 16),
        linkType: Number(read('type')),
        enslaved: existsSync(join(dir, 'master')),
      });
    } catch {
      // Gone between readdir and read, or not an interface directory (bonding_masters).
    }
  }
  return links.sort((a, b) => a.index - b.index);
}
