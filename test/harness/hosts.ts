/**
 * Real systemd test hosts by name (scripts/testhost.sh: overlay root, private /tmp and /run, own
 * netns on the test bridge): boot one and read where it is, power, network, a shell inside.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "./paths.js";

const run = promisify(execFile);
const TESTHOST = join(ROOT, "scripts", "testhost.sh");
/** This machine's address on the test bridge (the first host booted creates the bridge). */
export const BRIDGE_IP = "10.77.0.1";
export const TESTHOST_BASE = process.env.TESTHOST_BASE ?? "/tmp/houston-th";
/** podman inside a test host: its store on the host's private tmpfs, runc, no systemd cgroups */
export const TESTHOST_PODMAN = [
  "podman",
  "--root",
  "/tmp/ps",
  "--runroot",
  "/run/pr",
  "--runtime",
  "runc",
  "--cgroup-manager",
  "cgroupfs",
  "--events-backend",
  "file",
];

export interface HostSpec {
  name: string;
  meta: Record<string, string>;
}

export interface FleetHost {
  name: string;
  ip: string;
  root: string;
  dbus: string;
  meta: Record<string, string>;
}

/** scripts/testhost.sh with these arguments; its stdout. */
export async function testhost(...args: string[]): Promise<string> {
  const { stdout } = await run("bash", [TESTHOST, ...args], {
    env: { ...process.env, TESTHOST_BASE },
    maxBuffer: 1 << 20,
  });
  return stdout;
}

/** Boots a host; one left over under that name from a killed run is stopped first (it would block the start). */
export async function startHost(name: string): Promise<void> {
  if (hostExists(name)) await testhost("stop", name);
  await testhost("start", name);
}

/** Where a booted host is (testhost.sh's env file), and how long its boot took in ms. */
export function bootedHost(spec: HostSpec): { host: FleetHost; bootMs: string | undefined } {
  const env = readEnv(spec.name);
  return {
    host: {
      name: spec.name,
      ip: env.TESTHOST_IP ?? "",
      root: env.TESTHOST_ROOT ?? "",
      dbus: env.DBUS_SYSTEM_BUS_ADDRESS ?? "",
      meta: spec.meta,
    },
    bootMs: env.TESTHOST_BOOT_MS,
  };
}

function readEnv(name: string): Record<string, string> {
  const text = readFileSync(join(TESTHOST_BASE, name, "env"), "utf8");
  return Object.fromEntries(
    text
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** Whether a host of this name exists (booted, or left behind). */
export function hostExists(name: string): boolean {
  return existsSync(join(TESTHOST_BASE, name));
}

/** Takes a host's side of its veth down (cut off the test network) or up again. */
export async function setLink(name: string, up: boolean): Promise<void> {
  await run("ip", ["link", "set", `th-${name}`, up ? "up" : "down"]);
}

/** Runs a command inside a host (all its namespaces). */
export async function shell(name: string, ...cmd: string[]): Promise<string> {
  const { stdout } = await run("bash", [TESTHOST, "shell", name, ...cmd], {
    env: { ...process.env, TESTHOST_BASE },
    maxBuffer: 4 << 20,
  });
  return stdout;
}
