/**
 * Names every component agrees on, in one place (no imports: the controller's flag parsing
 * reads these before the slow Kubernetes client is loaded).
 */

/** Where MetalLB's objects live unless told otherwise (its configuration, leases, Secrets). */
export const DEFAULT_NAMESPACE = 'metallb-system';

/** The legacy configuration: the ConfigMap `<namespace>/config`, key `config`. */
export const CONFIG_MAP_NAME = 'config';
