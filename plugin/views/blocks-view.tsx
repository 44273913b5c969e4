/** Blocks (blocks.ts) drawn by ink, for lists of a screenful. */
import type { Block } from './blocks.js';
import { draw } from './render.js';
import { Blocks } from './table.js';

/** The blocks as ink draws them, `width` columns wide (their widest line: no row wraps). */
export function drawWithInk(blocks: readonly Block[], color: boolean, width: number): string {
  return draw(<Blocks blocks={blocks} color={color} />, Math.max(width, 60));
}
