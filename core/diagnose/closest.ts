/** "Did you mean": the names nearest to what was typed, by edit distance. */

/** Edit distance with transpositions (optimal string alignment): "wbe" is one edit from "web". */
export function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Up to `max` names close to `typed`, closest first: within a third of its length in edits, or
 * starting with / containing it.
 */
export function closest(typed: string, names: Iterable<string>, max = 3): string[] {
  const limit = Math.max(1, Math.ceil(typed.length / 3));
  const scored: { name: string; score: number }[] = [];
  for (const name of new Set(names)) {
    const d = distance(typed.toLowerCase(), name.toLowerCase());
    const contains = typed.length >= 2 && (name.includes(typed) || typed.includes(name));
    if (d <= limit || contains) scored.push({ name, score: contains ? Math.min(d, limit) - 0.5 : d });
  }
  return scored
    .sort((x, y) => x.score - y.score || (x.name < y.name ? -1 : 1))
    .slice(0, max)
    .map((s) => s.name);
}
