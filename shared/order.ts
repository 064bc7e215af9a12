/**
 * Ordinal string order (UTF-16 code units), for every sort whose result must be the same on the
 * controller and on every host. `localeCompare` depends on the process's locale (LANG), and its
 * first call loads ICU's collation data: about 6 MB of the agent's resident memory on Node 24.
 */
export function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
