/**
 * Houston's unit naming, from structured parts (never parsed back from names with regexes:
 * the parts are stored next to the name in the spec).
 *   stack `example`, component `pgbouncer`, version `f20fb494`  → example-pgbouncer@f20fb494.service
 *   the service itself (no component)                          → example@7b7d061b.service
 *   with group `blue`                                           → example-nginx:blue@1.9.3.service
 *   global units: stack `global` (the name alone, as the original) → consul@1.8.7.service
 *   (the global file archive keeps its prefix)                  → global-file-deploy@3f2a9c1e.service
 *   a component already named after its stack (no double prefix) → shop-db@3.service in stack shop
 *   a stack's shared listening socket ([X-Houston] Socket=)      → example.socket
 *   and the unit that socket activates (never a version)        → example.service
 */
import { z } from "zod";

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const GROUP_RE = /^[a-z0-9][a-z0-9-]*$/;
/**
 * What Houston ever writes: <name>[:<group>]@<version>.service, and for a stack's shared socket
 * <name>[:<group>].socket with its guard <name>[:<group>].service (systemd's character set).
 */
export const UNIT_NAME_RE =
  /^[A-Za-z0-9][A-Za-z0-9_.-]*(:[a-z0-9][a-z0-9-]*)?(@[A-Za-z0-9][A-Za-z0-9_.-]*\.service|\.socket|\.service)$/;

export const UnitNameSchema = z
  .string()
  .regex(
    UNIT_NAME_RE,
    "not a Houston unit name (<name>[:<group>]@<version>.service, or a stack's .socket and .service)",
  )
  .superRefine((name, ctx) => {
    const reserved = reservedUnitName(name);
    if (reserved) ctx.addIssue({ code: "custom", message: reserved });
  });

export interface UnitNameParts {
  stack: string;
  component: string | null;
  group: string | null;
  version: string;
  /** a versioned unit (default), or the stack's unversioned socket and its guard */
  kind?: "versioned" | "socket" | "socket-guard";
}

/** The stack that global deployments deploy as; its units are named as the original Houston named them. */
export const GLOBAL_STACK = "global";
/** The component of a deployment's file archive unit (always prefixed, also for global). */
export const ARCHIVE_COMPONENT = "file-deploy";

export function unitName(p: UnitNameParts): string {
  return render(p, componentBase(p.stack, p.component));
}

/**
 * Names Houston rendered before it followed the original's (`global-consul@…`,
 * `shop-shop-db@…`): still read from KV so that a live spec stays valid and is replaced on the
 * next deploy; never rendered for a new one.
 */
export function legacyUnitName(p: UnitNameParts): string {
  return render(p, p.component ? `${p.stack}-${p.component}` : p.stack);
}

function componentBase(stack: string, component: string | null): string {
  if (!component) return stack;
  if (stack === GLOBAL_STACK && component !== ARCHIVE_COMPONENT) return component;
  if (component.startsWith(stack)) return component;
  return `${stack}-${component}`;
}

function render(p: UnitNameParts, name: string): string {
  const base = `${name}${p.group ? `:${p.group}` : ""}`;
  if (p.kind === "socket") return `${base}.socket`;
  if (p.kind === "socket-guard") return `${base}.service`;
  return `${base}@${p.version}.service`;
}

/**
 * Names of units the OS and systemd ship (or instantiate from their templates): a Houston unit
 * rendering to one of them would shadow the vendor's unit from /etc/systemd/system, and removing it
 * would stop the vendor's instance (`user@0.service`, `getty@tty1.service`). The agent also asks
 * systemd about every new name before writing it; this list refuses the well-known ones at plan time.
 */
const RESERVED_BASES = new Set([
  "autovt",
  "capsule",
  "console-getty",
  "container-getty",
  "dbus",
  "dbus-broker",
  "emergency",
  "getty",
  "getty-pre",
  "houston-agent",
  "ifup",
  "initrd",
  "kmod-static-nodes",
  "ldconfig",
  "lvm2-pvscan",
  "mdmon",
  "modprobe",
  "polkit",
  "rescue",
  "serial-getty",
  "ssh",
  "sshd",
  "sshd-keygen",
  "sulogin",
  "user",
  "user-runtime-dir",
]);
const RESERVED_PREFIXES = ["systemd-", "dbus-", "initrd-", "user@", "sys-", "dev-", "-"];

/** Why a rendered unit name is reserved for the OS, or null. */
export function reservedUnitName(name: string): string | null {
  const base = /^(.*?)(?::[a-z0-9-]+)?(?:@.*)?\.(?:service|socket)$/.exec(name)?.[1] ?? name;
  if (RESERVED_BASES.has(base)) return `${name} would shadow the system's ${base}@ units (reserved name)`;
  const prefix = RESERVED_PREFIXES.find((p) => base.startsWith(p));
  if (prefix) return `${name} would shadow the system's ${prefix}* units (reserved name)`;
  return null;
}
