/**
 * Reading interfaces from sysfs (a fake tree, and this machine's own loopback) and which of
 * them may announce when none is named.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InterfaceFlag, isEligible, readInterfaces, type NetworkInterface } from './interfaces.js';

describe('readInterfaces', () => {
  let sysfs: string;
  beforeAll(() => {
    sysfs = mkdtempSync(join(tmpdir(), 'mlbt-sysfs-'));
    const add = (name: string, files: Record<string, string>, master = false): void => {
      mkdirSync(join(sysfs, name));
      for (const [file, text] of Object.entries(files)) writeFileSync(join(sysfs, name, file), `${text}\n`);
      if (master) mkdirSync(join(sysfs, name, 'master'));
    };
    add('eth0', { ifindex: '2', address: '02:AA:00:00:00:01', flags: '0x1003', type: '1' });
    add('lo', { ifindex: '1', address: '00:00:00:00:00:00', flags: '0x9', type: '772' });
    add('veth1', { ifindex: '3', address: '02:aa:00:00:00:02', flags: '0x1003', type: '1' }, true);
    add('half', { ifindex: '4' }); // vanished while we read it
    writeFileSync(join(sysfs, 'bonding_masters'), 'bond0\n');
  });
  afterAll(() => rmSync(sysfs, { recursive: true, force: true }));

  it('reads index, MAC (lower case), flags, type and whether it is enslaved, in index order', () => {
    expect(readInterfaces(sysfs)).toEqual([
      { name: 'lo', index: 1, mac: '00:00:00:00:00:00', flags: 0x9, linkType: 772, enslaved: false },
      { name: 'eth0', index: 2, mac: '02:aa:00:00:00:01', flags: 0x1003, linkType: 1, enslaved: false },
      { name: 'veth1', index: 3, mac: '02:aa:00:00:00:02', flags: 0x1003, linkType: 1, enslaved: true },
    ]);
  });

  it("reads this machine's loopback", () => {
    const lo = readInterfaces().find((l) => l.name === 'lo');
    expect(lo && (lo.flags & InterfaceFlag.loopback) !== 0).toBe(true);
    expect(lo && isEligible(lo)).toBe(false);
  });
});

describe('isEligible', () => {
  const eth: NetworkInterface = { name: 'eth0', index: 2, mac: '02:00:00:00:00:02', flags: 0x1003, linkType: 1, enslaved: false };
  it.each([
    { name: 'an up Ethernet interface', link: eth, eligible: true },
    { name: 'down', link: { ...eth, flags: 0x1002 }, eligible: false },
    { name: 'loopback', link: { ...eth, flags: 0x9 | 0x2 }, eligible: false },
    { name: 'NOARP', link: { ...eth, flags: 0x1003 | 0x80 }, eligible: false },
    { name: 'not broadcast-capable (point to point)', link: { ...eth, flags: 0x1001 | 0x10 }, eligible: false },
    { name: 'not Ethernet (a tunnel)', link: { ...eth, linkType: 65534 }, eligible: false },
    { name: 'a bridge or bond port', link: { ...eth, enslaved: true }, eligible: false },
    { name: 'no MAC', link: { ...eth, mac: '00:00:00:00:00:00' }, eligible: false },
  ])('$name: $eligible', ({ link, eligible }) => {
    expect(isEligible(link)).toBe(eligible);
  });
});
