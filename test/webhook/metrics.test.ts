/**
 * The Metrics class: MetalLB's metric names (so MetalLB's dashboards and alerts work), ours, and
 * what each method does to the exposition.
 */
import { Metrics } from '../../webhook/metrics.js';

/** The value of one sample line (`name{labels} value`), or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === series) return Number(line.slice(at + 1));
  }
  return undefined;
}

/** `# TYPE` of every metric in the exposition. */
function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] as string, m[2] as string);
  return out;
}

describe('Metrics', () => {
  it('exposes MetalLB names with their types, and help text for every metric', async () => {
    const text = await new Metrics().text();
    expect(Object.fromEntries(types(text))).toEqual({
      metallb_allocator_addresses_in_use_total: 'gauge',
      metallb_allocator_addresses_total: 'gauge',
      metallb_k8s_client_config_loaded_bool: 'gauge',
      metallb_k8s_client_config_stale_bool: 'gauge',
      metallb_k8s_client_updates_total: 'counter',
      metallb_k8s_client_update_errors_total: 'counter',
      metallb_controller_synced_bool: 'gauge',
      metallb_allocations_total: 'counter',
      metallb_allocation_failures_total: 'counter',
      metallb_admission_duration_seconds: 'histogram',
      metallb_config_state: 'gauge',
      metallb_config_last_reload_success_timestamp_seconds: 'gauge',
    });
    for (const name of types(text).keys()) expect(text).toMatch(new RegExp(`^# HELP ${name} \\S.{10,}$`, 'm'));
    // The names of before the rename are gone (one series per fact).
    expect(text).not.toMatch(/^metallb_addresses_(in_use|total)/m);
  });

  it("setPoolUsage sets MetalLB's per-pool gauges; removePool drops the series", async () => {
    const m = new Metrics();
    m.setPoolUsage('web', 3, 254);
    m.setPoolUsage('spare', 0, 260);
    let text = await m.text();
    expect(sample(text, 'metallb_allocator_addresses_in_use_total{pool="web"}')).toBe(3);
    expect(sample(text, 'metallb_allocator_addresses_total{pool="web"}')).toBe(254);
    expect(sample(text, 'metallb_allocator_addresses_in_use_total{pool="spare"}')).toBe(0);
    expect(sample(text, 'metallb_allocator_addresses_total{pool="spare"}')).toBe(260);
    m.setPoolUsage('web', 4, 254);
    m.removePool('spare');
    text = await m.text();
    expect(sample(text, 'metallb_allocator_addresses_in_use_total{pool="web"}')).toBe(4);
    expect(sample(text, 'metallb_allocator_addresses_in_use_total{pool="spare"}')).toBeUndefined();
    expect(sample(text, 'metallb_allocator_addresses_total{pool="spare"}')).toBeUndefined();
  });

  it('configuration: loaded and stale follow setConfigValid, and can be set on their own', async () => {
    const m = new Metrics({ now: () => 1_700_000_000_000 });
    let text = await m.text();
    // Nothing loaded yet.
    expect(sample(text, 'metallb_k8s_client_config_loaded_bool')).toBe(0);
    expect(sample(text, 'metallb_k8s_client_config_stale_bool')).toBe(0);
    m.setConfigValid(true);
    text = await m.text();
    expect(sample(text, 'metallb_k8s_client_config_loaded_bool')).toBe(1);
    expect(sample(text, 'metallb_k8s_client_config_stale_bool')).toBe(0);
    expect(sample(text, 'metallb_config_state')).toBe(1);
    expect(sample(text, 'metallb_config_last_reload_success_timestamp_seconds')).toBe(1_700_000_000);
    // An invalid one: running on the last good one, which stays loaded.
    m.setConfigValid(false);
    text = await m.text();
    expect(sample(text, 'metallb_k8s_client_config_stale_bool')).toBe(1);
    expect(sample(text, 'metallb_k8s_client_config_loaded_bool')).toBe(1);
    expect(sample(text, 'metallb_config_state')).toBe(0);
    expect(sample(text, 'metallb_config_last_reload_success_timestamp_seconds')).toBe(1_700_000_000);
    // Could not be read (not invalid): the caller says stale directly.
    m.setConfigValid(true);
    m.setConfigStale(true);
    expect(sample(await m.text(), 'metallb_k8s_client_config_stale_bool')).toBe(1);
    m.setConfigStale(false);
    m.setConfigLoaded(false);
    text = await m.text();
    expect(sample(text, 'metallb_k8s_client_config_stale_bool')).toBe(0);
    expect(sample(text, 'metallb_k8s_client_config_loaded_bool')).toBe(0);
  });

  it('countUpdate counts every processed update, and failed ones as errors too', async () => {
    const m = new Metrics();
    m.countUpdate(true);
    m.countUpdate(true);
    m.countUpdate(false);
    const text = await m.text();
    expect(sample(text, 'metallb_k8s_client_updates_total')).toBe(3);
    expect(sample(text, 'metallb_k8s_client_update_errors_total')).toBe(1);
  });

  it('allocations, failures and admission latency', async () => {
    const m = new Metrics();
    m.countAllocation('web');
    m.countAllocation('web');
    m.countFailure('pool-full');
    m.observeAdmission('mutateServices', 0.003, true);
    m.observeAdmission('validateServices', 0.2, false);
    m.observeAdmission('mutateServices', 7, 'error');
    const text = await m.text();
    expect(sample(text, 'metallb_allocations_total{pool="web"}')).toBe(2);
    expect(sample(text, 'metallb_allocation_failures_total{reason="pool-full"}')).toBe(1);
    expect(sample(text, 'metallb_admission_duration_seconds_bucket{le="0.0025",handler="mutateServices",allowed="true"}')).toBe(0);
    expect(sample(text, 'metallb_admission_duration_seconds_bucket{le="0.005",handler="mutateServices",allowed="true"}')).toBe(1);
    expect(sample(text, 'metallb_admission_duration_seconds_count{handler="validateServices",allowed="false"}')).toBe(1);
    expect(sample(text, 'metallb_admission_duration_seconds_bucket{le="5",handler="mutateServices",allowed="error"}')).toBe(0);
    expect(sample(text, 'metallb_admission_duration_seconds_count{handler="mutateServices",allowed="error"}')).toBe(1);
  });

  it('keeps its own registry: two instances do not share series', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.countAllocation('p');
    a.countUpdate(false);
    a.setPoolUsage('p', 1, 2);
    const text = await b.text();
    expect(sample(text, 'metallb_allocations_total{pool="p"}')).toBeUndefined();
    expect(sample(text, 'metallb_allocator_addresses_in_use_total{pool="p"}')).toBeUndefined();
    expect(sample(text, 'metallb_k8s_client_updates_total')).toBe(0);
    expect(sample(text, 'metallb_k8s_client_update_errors_total')).toBe(0);
  });
});
