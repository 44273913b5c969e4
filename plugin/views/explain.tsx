/** `kubectl metallb explain svc NAME`: the verdict in one line, the fix, then the evidence by section. */
import { stripVTControlCharacters } from 'node:util';
import { Box, Text } from 'ink';
import { draw, widest } from './render.js';
import type { ReactNode } from 'react';
import type { Explanation, ServiceState } from '../../core/diagnose/index.js';
import { Table, Toned, type Tone } from './table.js';
import { age } from './lists.js';

export interface ExplainViewProps {
  explanation: Explanation & { configuration: { source: string; errors: string[] } };
  /** The time the cluster was read (ISO), for the age of events. */
  now: string;
  color: boolean;
}

const TONE: Record<ServiceState, Tone> = { ok: 'ok', pending: 'warn', 'not announced': 'bad', 'config error': 'bad' };

function Section({ title, color, children }: { title: string; color: boolean; children: ReactNode }) {
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold={color}>{title}</Text>
      <Box flexDirection="column" paddingLeft={2}>
        {children}
      </Box>
    </Box>
  );
}

export { age };

export function ExplainView({ explanation: e, now, color }: ExplainViewProps) {
  const r = e.request;
  const requested = r.requestedIPs.length > 0 ? r.requestedIPs.map((x) => `${x.value} (${x.from})`).join(', ') : 'none: the pool chooses';
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold={color}>
          {e.namespace}/{e.name}:{' '}
        </Text>
        <Toned color={color} tone={TONE[e.status]}>
          {e.verdict}
        </Toned>
      </Text>
      {e.fix && <Text>fix: {e.fix}</Text>}

      <Section title="Request" color={color}>
        <Text>addresses: {requested}</Text>
        <Text>pool: {r.pool ? `${r.pool.value} (${r.pool.from})` : 'any pool that auto-assigns'}</Text>
        <Text>sharing key: {r.sharingKey ? `${r.sharingKey.value} (${r.sharingKey.from})` : 'none: shares its IP with nobody'}</Text>
        <Text>
          families: {r.ipFamilyPolicy}
          {r.ipFamilies.length > 0 ? ` ${r.ipFamilies.join(', ')}` : ''}
        </Text>
        {r.problem && <Toned color={color} tone="bad">{`cannot be read: ${r.problem}`}</Toned>}
      </Section>

      {e.pools.length > 0 && (
        <Section title="Pools (in the order auto-assignment tries them)" color={color}>
          <Table
            color={color}
            columns={[{ header: 'POOL' }, { header: 'FIT' }, { header: 'WHY' }]}
            rows={e.pools.map((p) => [p.pool, { text: p.verdict, tone: p.verdict === 'no' ? 'dim' : 'ok' }, p.reason])}
          />
        </Section>
      )}

      {e.sharing && (
        <Section title="Sharing" color={color}>
          <Text>key: {e.sharing.key}</Text>
          <Text>Services with the same key: {e.sharing.partners.length > 0 ? e.sharing.partners.join(', ') : 'none'}</Text>
          <Text>on the same IP: {e.sharing.sameIP.length > 0 ? e.sharing.sameIP.join(', ') : 'none'}</Text>
        </Section>
      )}

      <Section title="Traffic" color={color}>
        <Text>
          externalTrafficPolicy {e.traffic.policy}:{' '}
          {e.traffic.policy === 'Local' ? 'only nodes with a ready endpoint may announce' : 'any eligible node may announce, kube-proxy forwards'}
        </Text>
        <Text>
          ready endpoints: {e.traffic.readyEndpoints}
          {e.traffic.readyNodes.length > 0 ? ` on ${e.traffic.readyNodes.join(', ')}` : ''}
          {e.traffic.endpointsWithoutNode > 0 ? ` (${e.traffic.endpointsWithoutNode} without a node)` : ''}
        </Text>
      </Section>

      {e.layer2.length > 0 && (
        <Section title="Layer 2 (core/announce)" color={color}>
          {e.layer2.map((l) => (
            <Box key={l.ip} flexDirection="column">
              <Text>
                {l.ip}: {l.owner ? `announced by ${l.owner}${l.next ? `, next ${l.next}` : ', no other candidate'}` : `not announced: ${l.reason ?? ''}`}
              </Text>
              <Box flexDirection="column" paddingLeft={2}>
                <Text>
                  pool {l.pool ?? '-'}, advertisements {l.advertisements.length > 0 ? l.advertisements.join(', ') : 'none'}
                </Text>
                {l.candidates.length > 0 && <Text>candidates, best first: {l.candidates.join(', ')}</Text>}
                {l.ineligible.map((v) => (
                  <Text key={v.node}>
                    {v.node}: {v.reasons.join(', ')}
                  </Text>
                ))}
              </Box>
            </Box>
          ))}
          <Text>ServiceL2Status: {e.statusNodes.length > 0 ? e.statusNodes.join(', ') : 'none published'}</Text>
        </Section>
      )}

      {e.bgp.length > 0 && (
        <Section title="BGP advertisements" color={color}>
          {e.bgp.map((b) => (
            <Text key={b.advertisement}>
              {b.advertisement}: aggregation /{b.aggregationLength} (IPv6 /{b.aggregationLengthV6}){b.localPref !== null ? `, local-pref ${b.localPref}` : ''}
              {b.communities.length > 0 ? `, communities ${b.communities.join(' ')}` : ''}, peers {b.peers.length > 0 ? b.peers.join(', ') : 'none'}
            </Text>
          ))}
        </Section>
      )}

      {e.configuration.errors.length > 0 && (
        <Section title="Configuration" color={color}>
          <Toned color={color} tone="warn">
            {e.configuration.source === 'last-good'
              ? `the current configuration is invalid (${e.configuration.errors.length} error(s)); MetalLB keeps running on the last good one, which this uses`
              : `the current configuration is invalid (${e.configuration.errors.length} error(s)) and no last good one is recorded`}
          </Toned>
          {e.configuration.errors.map((x) => (
            <Text key={x}>{x}</Text>
          ))}
        </Section>
      )}

      {e.disagreements.length > 0 && (
        <Section title="The cluster shows otherwise" color={color}>
          {e.disagreements.map((d) => (
            <Toned key={d} color={color} tone="warn">
              {d}
            </Toned>
          ))}
        </Section>
      )}

      <Section title="Events" color={color}>
        {e.events.length === 0 ? (
          <Text>none</Text>
        ) : (
          <Table
            color={color}
            columns={[{ header: 'TYPE' }, { header: 'REASON' }, { header: 'AGE', align: 'right' }, { header: 'COUNT', align: 'right' }, { header: 'MESSAGE' }]}
            rows={e.events.map((v) => [{ text: v.type, tone: v.type === 'Warning' ? 'warn' : undefined }, v.reason, age(v.lastSeen, now), String(v.count), v.message])}
          />
        )}
      </Section>
    </Box>
  );
}

/** The view as text. */
export function drawExplain(props: ExplainViewProps): string {
  // ink lays the frame out cell by cell (width x height): draw it as narrow as its text allows.
  // Its lines are labels and indentation around the explanation's texts: try their widest plus
  // room for those, and if any text came out broken over lines, draw again with room to spare.
  const texts: string[] = [];
  JSON.stringify(props.explanation, (_, v: unknown) => {
    if (typeof v === 'string') texts.push(v);
    return v;
  });
  const rows = props.explanation.events.map((v) => v.reason.length + v.message.length + v.type.length + 30);
  const narrow = draw(<ExplainView {...props} />, Math.max(widest(texts) + 40, ...rows, 80));
  const plain = props.color ? stripVTControlCharacters(narrow) : narrow;
  // (Times are shown as ages, not as written: they do not count.)
  if (texts.every((t) => t.length < 20 || TIMESTAMP.test(t) || plain.includes(t))) return narrow;
  return draw(<ExplainView {...props} />, Math.max(widest(texts) + 120, ...rows, 100));
}

const TIMESTAMP = /^\d{4}-\d\d-\d\dT/;
