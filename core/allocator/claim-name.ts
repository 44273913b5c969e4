/**
 * IPClaim object names: the IP itself, encoded as a DNS subdomain name (the encoding the
 * IPClaim CRD documents and its validation rule enforces).
 */
import { formatIP, parseIP, type IP } from '../ip/index.js';

/** The name of the IPClaim for `ip`: IPv4 as is; IPv6 canonical text with ':' -> '-', '0' padding at the ends. */
export function claimName(ip: IP): string {
  const text = formatIP(ip);
  if (ip.family === 'IPv4') return text;
  return (text.startsWith(':') ? '0' : '') + text.replaceAll(':', '-') + (text.endsWith(':') ? '0' : '');
}

/** The IP an IPClaim name stands for, or undefined when the name is not one (0::1 reads as ::1). */
export function ipOfClaimName(name: string): IP | undefined {
  const parsed = parseIP(name.includes('-') ? name.replaceAll('-', ':') : name);
  return parsed.ok ? parsed.value : undefined;
}
