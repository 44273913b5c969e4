/**
 * The admission.k8s.io/v1 AdmissionReview contract between the HTTPS server (which parses,
 * checks and answers reviews) and the handlers (which decide). Handlers never see HTTP.
 */

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** The parts of an AdmissionReview request the handlers use, already checked by the server. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name: string;
  namespace?: string;
  operation: Operation;
  userInfo: { username?: string; groups?: string[] };
  /** The object after the operation (absent on DELETE). */
  object?: Record<string, unknown>;
  /** The object before the operation (UPDATE and DELETE). */
  oldObject?: Record<string, unknown>;
  dryRun: boolean;
}

/** One RFC 6902 operation. */
export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'test' | 'move' | 'copy';
  path: string;
  value?: unknown;
  from?: string;
}

/** A handler's verdict; the server adds the uid, encodes the patch and wraps it in a review. */
export interface AdmissionVerdict {
  allowed: boolean;
  /** Shown to the user on denial: one line saying what is wrong and what to do. */
  message?: string;
  /** HTTP-like code for a denial (default 400 Bad Request; 403 for policy, 409 for conflicts). */
  code?: number;
  /** Mutations; only mutating handlers return them. */
  patch?: JsonPatchOperation[];
  /** Shown by kubectl as `Warning: ...`. */
  warnings?: string[];
}

export type AdmissionHandler = (request: AdmissionRequest) => Promise<AdmissionVerdict>;
