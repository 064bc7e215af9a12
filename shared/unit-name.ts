/**
 * Houston's unit naming, from structured parts (never parsed back from names with regexes:
 * the parts are stored next to the name in the spec).
 *   stack `example`, component `pgbouncer`, version `f20fb494`  → example-pgbouncer@f20fb494.service
 *   the service itself (no component)                          → example@7b7d061b.service
 *   with group `blue`                                           → example-nginx:blue@1.9.3.service
 *   global units: stack `global`                                → global-consul@1.8.7.service
 */
import { z } from "zod";

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const GROUP_RE = /^[a-z0-9][a-z0-9-]*$/;
/** What Houston ever writes: <name>[:<group>]@<version>.service (systemd's character set). */
export const UNIT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*(:[a-z0-9][a-z0-9-]*)?@[A-Za-z0-9][A-Za-z0-9_.-]*\.service$/;

export const UnitNameSchema = z.string().regex(UNIT_NAME_RE, "not a Houston unit name (<name>[:<group>]@<version>.service)");

export interface UnitNameParts {
  stack: string;
  component: string | null;
  group: string | null;
  version: string;
}

export function unitName(p: UnitNameParts): string {
  const base = p.component ? `${p.stack}-${p.component}` : p.stack;
  return `${base}${p.group ? `:${p.group}` : ""}@${p.version}.service`;
}
