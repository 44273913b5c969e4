/**
 * Draws an ink view to text once, `width` columns wide (its widest line, so that ink never wraps
 * a row). The commands print through blocks.ts's writer; the tests draw the same views with
 * this and compare.
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
