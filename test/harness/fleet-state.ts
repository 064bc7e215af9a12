/**
 * What a named test fleet is running, in TESTHOST_BASE/<name>.fleet.json, written as soon as there
 * is something to clean up; `tearDown(name)` removes what a fleet whose process was killed left
 * behind (processes only by a PID that still runs that program).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TESTHOST_BASE, hostExists, testhost } from "./hosts.js";
import { killAndWait, runs } from "./process.js";

export interface FleetState {
  etcdPid?: number;
  etcdDir?: string;
  consulPids: number[];
  dataDir: string;
  tlsDir: string;
  hosts: string[];
}

export function stateFile(name: string): string {
  return join(TESTHOST_BASE, `${name}.fleet.json`);
}

export function writeState(name: string, state: FleetState): void {
  mkdirSync(TESTHOST_BASE, { recursive: true });
  writeFileSync(stateFile(name), JSON.stringify(state));
}

/** Removes what a fleet started under `name` left behind: hosts, Consul servers, etcd, data; what it removed. */
export async function tearDown(name: string): Promise<string[]> {
  const file = stateFile(name);
  if (!existsSync(file)) return [];
  const state = JSON.parse(readFileSync(file, "utf8")) as Partial<FleetState>;
  const done: string[] = [];
  for (const pid of Array.isArray(state.consulPids) ? state.consulPids : []) {
    if (typeof pid === "number" && pid > 0 && runs(pid, "consul")) {
      await killAndWait(pid);
      done.push(`Consul server (pid ${pid})`);
    }
  }
  for (const h of Array.isArray(state.hosts) ? state.hosts.filter((x): x is string => typeof x === "string") : []) {
    if (hostExists(h)) {
      await testhost("stop", h).catch(() => undefined);
      done.push(`test host ${h}`);
    }
  }
  if (typeof state.etcdPid === "number" && state.etcdPid > 0 && runs(state.etcdPid, "etcd")) {
    await killAndWait(state.etcdPid);
    done.push(`etcd (pid ${state.etcdPid})`);
  }
  for (const d of [state.dataDir, state.tlsDir, state.etcdDir])
    if (typeof d === "string" && d.startsWith(tmpdir())) rmSync(d, { recursive: true, force: true });
  rmSync(file, { force: true });
  return done;
}
