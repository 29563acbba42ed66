/** The policy engine: load a folder once, then decide per request. */
export { loadPolicy, formatProblem } from './load.js';
export type { LoadResult, PolicyProblem } from './load.js';
export { decide } from './decide.js';
export type { DecideOptions } from './decide.js';
export { normalizeHost } from './host.js';
export * from './types.js';
