/**
 * A helper process for the layer-2 lab: the real Layer2Speaker (real AF_PACKET sockets, real
 * /sys/class/net) in the network namespace it was started in, driven by the test.
 * Run as `ip netns exec NS node dist/test/layer2/speaker-node.js [OPTIONS-JSON]`, where the
 * options are Layer2SpeakerOptions' numbers (linkPollIntervalMs, refreshIntervalMs, ...).
 *
 * Requests: set { announcements: { ip: [interface...] } }, interfaces { ip }, refresh, metrics.
 * Events: ready, log { line }.
 */
import { Registry } from 'prom-client';
import { Layer2Speaker, type Layer2Announcement } from '../../agent/layer2/speaker.js';
import { serve } from './rpc.js';

const metrics = new Registry();
const options = JSON.parse(process.argv[2] ?? '{}') as Record<string, number>;
const rpc = serve({
  set: (r) => {
    const announcements = r.announcements as Record<string, string[]>;
    speaker.setAnnouncements(new Map(Object.entries(announcements).map(([ip, interfaces]): [string, Layer2Announcement] => [ip, { interfaces }])));
  },
  interfaces: (r) => speaker.interfacesOf(String(r.ip)),
  refresh: () => speaker.refreshInterfaces(),
  metrics: () => metrics.metrics(),
});
const speaker = new Layer2Speaker({ metrics, log: (line) => rpc.emit('log', { line }), ...options });
process.on('SIGTERM', () => {
  speaker.close();
  process.exit(0);
});
rpc.emit('ready');
