/**
 * Draws a view to text once (kubectl-style output, not an interactive screen), `width` columns
 * wide: the view's widest line, so that ink never wraps a table row (the terminal wraps long
 * lines as it does kubectl's). Not wider: ink lays the frame out cell by cell, width x height.
 */
import { renderToString } from 'ink';
import type { ReactElement } from 'react';

export function draw(view: ReactElement, width: number): string {
  const text = renderToString(view, { columns: Math.max(80, Math.ceil(width) + 1) });
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** The longest of some lines (their width in characters). */
export function widest(lines: Iterable<string>): number {
  let w = 0;
  for (const l of lines) w = Math.max(w, [...l].length);
  return w;
}
