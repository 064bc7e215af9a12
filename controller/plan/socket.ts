/**
 * Zero-downtime upgrades with systemd alone ([X-Houston] Socket=, pure). A service that declares
 * Socket= gets a stable, unversioned socket unit for its stack; every version of the service
 * inherits its listening descriptors (Sockets=), so old and new versions accept from the same
 * kernel queue while both run, and stopping the old one drops nothing.
 *
 * The socket never starts a version by itself: its Service= is the stack's guard unit (a oneshot
 * that stays active), which the agent starts with the socket. While no version runs, connections
 * wait in the queue until one does.
 */
import { isIP } from "node:net";
import { ConfigError } from "../../shared/errors.js";
import type { UnitFile } from "../../shared/unit-file.js";
import { entries } from "../../shared/unit-file.js";

/** The ListenStream= values of a unit's [X-Houston] Socket= lines (checked, source:line on error). */
export function socketSpecs(unit: UnitFile, source: string): string[] {
  return entries(unit, "X-Houston", "Socket").map((e) => {
    const v = e.value.trim();
    const fail = (why: string): never => {
      throw new ConfigError(
        source,
        `[X-Houston] Socket=${e.value}: ${why} (a port, or host:port such as 127.0.0.1:8080 or [::1]:8080)`,
        e.line,
      );
    };
    const m = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(\d{1,5})$/.exec(v);
    if (!m) return fail("not a port or address:port");
    const port = Number(m[2]);
    if (port < 1 || port > 65535) fail("port out of range");
    const host = m[1]?.replace(/^\[|\]$/g, "");
    if (host !== undefined && isIP(host) === 0) fail(`${host} is not an IP address`);
    return v;
  });
}

export function socketUnit(stack: string, service: string, listen: string[]): UnitFile {
  return {
    sections: [
      {
        name: "Unit",
        entries: [
          {
            key: "Description",
            value: `Listening socket of ${stack}, shared by every version of its service (${service.replace(/@.*$/, "@*")})`,
          },
        ],
      },
      {
        name: "Socket",
        entries: [...listen.map((value) => ({ key: "ListenStream", value })), { key: "Accept", value: "no" }],
      },
    ],
  };
}

/** What the socket activates: never a version (it stays active, so the socket triggers nothing). */
export function socketGuardUnit(stack: string): UnitFile {
  return {
    sections: [
      {
        name: "Unit",
        entries: [
          { key: "Description", value: `Holds the socket of ${stack}: activation starts this, never a version` },
        ],
      },
      {
        name: "Service",
        entries: [
          { key: "Type", value: "oneshot" },
          { key: "RemainAfterExit", value: "yes" },
          { key: "ExecStart", value: "/bin/true" },
        ],
      },
    ],
  };
}

/** Each version of the service inherits the socket's descriptors, and needs it started first. */
export function attachSocket(unit: UnitFile, socketName: string): void {
  let u = unit.sections.find((s) => s.name === "Unit");
  if (!u) {
    u = { name: "Unit", entries: [] };
    unit.sections.unshift(u);
  }
  u.entries.push({ key: "Requires", value: socketName }, { key: "After", value: socketName });
  let svc = unit.sections.find((s) => s.name === "Service");
  if (!svc) {
    svc = { name: "Service", entries: [] };
    unit.sections.push(svc);
  }
  svc.entries.push({ key: "Sockets", value: socketName });
}
