/**
 * Watch streams (`?watch=1`): newline-delimited JSON events (ADDED, MODIFIED, DELETED,
 * BOOKMARK, ERROR) over a chunked HTTP response, following the apiserver's watch cache:
 * - no resourceVersion (or "0"): synthetic ADDED events for the current state, then changes;
 * - a resourceVersion: every change after it, or an ERROR event with a 410 Expired Status when
 *   the history no longer reaches back that far (or the version is newer than the store's);
 * - label/field selectors turn an object entering or leaving the selection into ADDED or
 *   DELETED, as the real server does;
 * - `allowWatchBookmarks` gets periodic BOOKMARKs; `sendInitialEvents` ends the initial
 *   events with the `k8s.io/initial-events-end` bookmark;
 * - `timeoutSeconds` ends the stream, and so does `closeMatching` (`api.closeWatches`);
 *   `forceWatchExpiry` compacts and ends every stream with 410 Gone;
 * - Table output (kubectl get -w) sends column definitions with the first event only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { expired } from './errors.js';
import { apiVersionOf, type KubeObject } from './object.js';
import type { ResourceType } from './resources.js';
import type { ObjectFilter } from './rest.js';
import type { Change, ObjectStore } from './store.js';
import { partialMetadata, toTable, type IncludeObject } from './tables.js';

/** How event objects are rendered. */
export type WatchOutput = { as: 'object' } | { as: 'table'; include: IncludeObject } | { as: 'metadata' };

/** One watch request, already parsed and checked. */
export interface WatchRequest {
  type: ResourceType;
  /** Namespace to watch in; undefined for all namespaces (or cluster-scoped types). */
  namespace: string | undefined;
  filter: ObjectFilter;
  resourceVersion: string | undefined;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
  output: WatchOutput;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** Which open watches `closeMatching` ends; every given field must match. */
export interface WatchFilter {
  /** Plural resource, e.g. `services`. */
  resource?: string;
  /** API group ('' for the core group). */
  group?: string;
  /** The namespace watched (watches across all namespaces have none). */
  namespace?: string;
}

/** Serves and tracks the open watch streams. */
export class WatchHub {
  /** The close function of each open stream, with what it watches. */
  private readonly open = new Map<() => void, WatchRequest>();

  constructor(
    private readonly store: ObjectStore,
    private readonly bookmarkIntervalMs: number,
  ) {}

  /** Number of open streams (for tests). */
  get size(): number {
    return this.open.size;
  }

  /** Ends every open stream (server shutdown). */
  closeAll(): void {
    for (const close of [...this.open.keys()]) close();
  }

  /**
   * Ends the matching streams cleanly (the response just ends, as when the server's
   * timeoutSeconds passes); returns how many.
   */
  closeMatching(filter: WatchFilter = {}): number {
    let n = 0;
    for (const [close, w] of [...this.open]) {
      if (filter.resource !== undefined && filter.resource !== w.type.resource) continue;
      if (filter.group !== undefined && filter.group !== w.type.group) continue;
      if (filter.namespace !== undefined && filter.namespace !== w.namespace) continue;
      close();
      n++;
    }
    return n;
  }

  /** Streams events to `res` until the client goes away, the timeout passes or history is compacted. */
  serve(req: IncomingMessage, res: ServerResponse, w: WatchRequest): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    let tableHeadersSent = false;
    let closed = false;

    const encode = (type: EventType, obj: KubeObject): string => {
      let object: unknown = obj;
      if (type !== 'ERROR' && type !== 'BOOKMARK') {
        if (w.output.as === 'table') {
          object = toTable(w.type, [obj], { include: w.output.include, noHeaders: tableHeadersSent });
          tableHeadersSent = true;
        } else if (w.output.as === 'metadata') {
          object = partialMetadata(obj);
        }
      }
      return `${JSON.stringify({ type, object })}\n`;
    };
    const send = (type: EventType, obj: KubeObject): void => {
      if (!closed) res.write(encode(type, obj));
    };
    const bookmark = (rv: number, initialEventsEnd = false): void => {
      const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
      if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
      send('BOOKMARK', { kind: w.type.kind, apiVersion: apiVersionOf(w.type.group, w.type.version), metadata });
    };

    const inScope = (o: KubeObject): boolean => w.namespace === undefined || (o.metadata.namespace ?? '') === w.namespace;
    const deliver = (c: Change): void => {
      if (c.resource !== w.type.storage || !inScope(c.object)) return;
      const now = c.type !== 'DELETED' && w.filter.matches(c.object);
      const before = c.oldObject !== undefined && w.filter.matches(c.oldObject);
      let type: EventType | undefined;
      if (c.type === 'ADDED') type = now ? 'ADDED' : undefined;
      else if (c.type === 'DELETED') type = before ? 'DELETED' : undefined;
      else if (now && before) type = 'MODIFIED';
      else if (now) type = 'ADDED';
      else if (before) type = 'DELETED';
      if (type) send(type, w.type.toVersion(c.object));
    };

    const cleanups: (() => void)[] = [];
    const close = (): void => {
      if (closed) return;
      closed = true;
      for (const c of cleanups) c();
      this.open.delete(close);
      res.end();
    };
    const gone = (rv: number): void => {
      send('ERROR', expired(`too old resource version: ${rv} (${this.store.oldestRevision})`).status as unknown as KubeObject);
      close();
    };
    this.open.set(close, w);
    req.on('close', close);
    res.on('error', close);

    // Replay and subscription happen in one synchronous step, so no change falls between them.
    const rvParam = w.resourceVersion;
    const fromNow = rvParam === undefined || rvParam === '' || rvParam === '0';
    if (fromNow || w.sendInitialEvents) {
      for (const o of this.store.list(w.type.storage, w.namespace)) if (w.filter.matches(o)) send('ADDED', w.type.toVersion(o));
      if (w.sendInitialEvents && w.allowBookmarks) bookmark(this.store.resourceVersion, true);
    } else {
      const rv = Number(rvParam);
      // A resourceVersion from the future can only come from an earlier server (a test that
      // restarted the double): 410 makes the client relist, instead of waiting for it.
      const changes = Number.isInteger(rv) && rv <= this.store.resourceVersion ? this.store.changesSince(rv) : 'gone';
      if (changes === 'gone') {
        gone(rv);
        return;
      }
      for (const c of changes) deliver(c);
    }
    cleanups.push(this.store.subscribe(deliver));
    cleanups.push(this.store.onCompaction(() => gone(this.store.resourceVersion - 1)));
    if (w.allowBookmarks) {
      const t = setInterval(() => bookmark(this.store.resourceVersion), this.bookmarkIntervalMs);
      cleanups.push(() => clearInterval(t));
    }
    if (w.timeoutSeconds !== undefined && w.timeoutSeconds > 0) {
      const t = setTimeout(close, w.timeoutSeconds * 1000);
      cleanups.push(() => clearTimeout(t));
    }
  }
}
