/**
 * Kubernetes label selector matching, for serviceAllocation's namespace and service selectors.
 * (core/config has its own copy for advertisement selectors; the two are to be merged.)
 */
import type { LabelSelector } from '../config/types.js';

/**
 * True when `labels` satisfy every matchLabels entry and every matchExpressions requirement.
 * An empty selector matches everything, as in Kubernetes.
 */
export function matches(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(sel.matchLabels)) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  for (const req of sel.matchExpressions) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case 'In':
        if (!has || value === undefined || !req.values.includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && req.values.includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
