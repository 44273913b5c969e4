/**
 * Draws a view to text once (kubectl-style output, not an interactive screen). Wide enough
 * that ink never wraps a table row: the terminal wraps long lines as it does kubectl's.
 */
import { renderToString } from 'ink';
import type { ReactElement } from 'react';

export function draw(view: ReactElement): string {
  const text = renderToString(view, { columns: 100_000 });
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}
