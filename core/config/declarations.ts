/**
 * What each source declares, before the sources are merged and checked against each other.
 * Each declaration keeps where it came from (source + paths) so that a cross-object error
 * (overlap, duplicate name, unknown reference) can name both places.
 */
import type { PeerPaths } from './objects.js';
import type { BFDProfile, BGPAdvertisement, BGPPeer, Community, L2Advertisement, Place, Pool } from './types.js';

/** One object as a source declared it, with its places. */
export interface Declared<T> {
  value: T;
  source: string;
  /** Path of the object itself: '' for a CRD, e.g. `address-pools[1]` in the ConfigMap. */
  path: string;
  /** Where its name is written (or the object path, for names the ConfigMap conversion made up). */
  namePath: string;
  /** False when the object itself has errors: it is checked against others but left out of Config. */
  ok: boolean;
  /** Its index in the input's resources (CRDs only). */
  resource?: number;
}

/** A pool, with the path of each address entry so overlaps can point at it. */
export interface PoolDecl extends Declared<Pool> {
  /** Path of each entry of value.ranges. */
  rangePaths: string[];
}

/** A peer, with where its fields are written (its BFD profile is resolved after all sources are read). */
export interface PeerDecl extends Declared<BGPPeer> {
  paths: PeerPaths;
}

/** A BFD profile; nothing to resolve later. */
export type BFDDecl = Declared<BFDProfile>;

/** A community alias: an entry of a Community object or of the ConfigMap's alias maps. */
export interface AliasDecl {
  name: string;
  /** Undefined when the value was malformed (already reported). */
  community: Community | undefined;
  source: string;
  path: string;
  resource?: number;
}

/** A name or literal written in a list, with its place. */
export interface Ref {
  text: string;
  path: string;
}

/** An L2Advertisement, its pool names resolved after all sources are read. */
export interface L2Decl extends Declared<L2Advertisement> {
  poolRefs: Ref[];
}

/** A BGPAdvertisement; pools, communities and aggregation are checked after all sources are read. */
export interface BGPAdvDecl extends Declared<BGPAdvertisement> {
  poolRefs: Ref[];
  /** Community aliases or literals, resolved once every alias of every source is known. */
  communityRefs: Ref[];
  aggregationLengthPath: string;
  aggregationLengthV6Path: string;
  localPrefPath: string;
}

/** Everything one source declares. */
export interface Declarations {
  pools: PoolDecl[];
  peers: PeerDecl[];
  bfdProfiles: BFDDecl[];
  aliases: AliasDecl[];
  l2Advertisements: L2Decl[];
  bgpAdvertisements: BGPAdvDecl[];
}

/** A source that declares nothing (an absent or unreadable ConfigMap). */
export function emptyDeclarations(): Declarations {
  return { pools: [], peers: [], bfdProfiles: [], aliases: [], l2Advertisements: [], bgpAdvertisements: [] };
}

/** "IPAddressPool metallb-system/prod at spec.addresses[0]", for naming the other place in a message. */
export function place(source: string, path: string): string {
  return path === '' ? source : `${source} at ${path}`;
}

/** A declaration's place at `path` (its name, a range, a field), for errors and their related place. */
export function placeOf(d: { source: string; resource?: number }, path: string): Place {
  return { source: d.source, path, ...(d.resource !== undefined ? { resource: d.resource } : {}) };
}
