/**
 * The zero-downtime scenario, shared by test/system/sockets.test.ts and `npm run bench`: a tiny
 * HTTP service that speaks socket activation, upgraded v1 → v2 → v3 by the houston CLI while a
 * bounded load generator (requests back to back, at most 100,000, stops when the upgrades end)
 * counts failed requests. With Socket= every version shares the socket; without, each binds the
 * port itself (SO_REUSEPORT) and versions overlap (Upgrade=side-by-side: a fixed port would else
 * stop then start). The replace strategy (a fixed ServicePort, default flags: stop then start, one
 * host at a time) is loaded on each of its hosts at once: each host's gap (how long it did not
 * answer while it was replaced) and whether another host answered all the while.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { LocalFleet } from "../../test/harness/local-fleet.js";
import { ROOT } from "../../test/harness/paths.js";

function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-zd-"));
  for (const [p, t] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), t);
  }
  return dir;
}

const SERVER = `import http.server, os, signal, socket, sys, threading
VERSION, PORT = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"version {VERSION}\\\\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(http.server.HTTPServer):
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind(self.server_address); self.server_name, self.server_port = "localhost", PORT
if os.environ.get("LISTEN_PID") == str(os.getpid()):
    srv = S(("0.0.0.0", PORT), H, bind_and_activate=False); srv.socket.close(); srv.socket = socket.socket(fileno=3)
    srv.socket.setblocking(False)  # shared queue: a lost accept race must not block
else:
    srv = S(("0.0.0.0", PORT), H)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
srv.serve_forever(); srv.server_close()
`;
const unit = (port: number, socket: boolean) =>
  `[Service]\nExecStart=/usr/bin/python3 /opt/zd/server.py %i ${port}\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\n${socket ? `Socket=${port}\n` : "Upgrade=side-by-side\n"}ServicePort=${port}\nServiceCheckInterval=1s\n`;
/** A config dir with two services: zds shares a socket (Socket=8090), zdb binds 8091 itself. */
export const zeroDowntimeConfig = (): string =>
  configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  zds: []\n  zdb: []\n",
    "units/service/zds.service": unit(8090, true),
    "units/service/zdb.service": unit(8091, false),
    "files/service/zds.yaml": `- path: /opt/zd/server.py\n  content: |\n${SERVER.replace(/^/gm, "    ")}\n`,
    "files/service/zdb.yaml": `- path: /opt/zd/server.py\n  content: |\n${SERVER.replace(/^/gm, "    ")}\n`,
  });

/** zdr: a fixed port (8092), nothing else said: the default strategy, stop then start host by host. */
export const replaceConfig = (): string =>
  configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  zdr: []\n",
    "units/service/zdr.service": `[Service]\nExecStart=/usr/bin/python3 /opt/zd/server.py %i 8092\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=8092\nServiceCheckInterval=1s\n`,
    "files/service/zdr.yaml": `- path: /opt/zd/server.py\n  content: |\n${SERVER.replace(/^/gm, "    ")}\n`,
  });

export function get(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: "/", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
      res.on("error", () => resolve(false));
    });
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** Requests back to back until `done` settles (at most 100,000 of them): [failed, sent]. */
export async function load(host: string, port: number, done: Promise<unknown>): Promise<[number, number]> {
  let finished = false;
  void done.finally(() => (finished = true));
  let failed = 0;
  let sent = 0;
  while (!finished && sent < 100_000) {
    sent++;
    if (!(await get(host, port))) failed++;
  }
  return [failed, sent];
}

/** Requests back to back until `done` settles: when each answered or failed (ms since the epoch). */
async function timeline(host: string, port: number, done: Promise<unknown>): Promise<{ at: number; ok: boolean }[]> {
  let finished = false;
  void done.finally(() => (finished = true));
  const out: { at: number; ok: boolean }[] = [];
  while (!finished && out.length < 200_000) out.push({ ok: await get(host, port), at: Date.now() });
  return out;
}

/** The spans a host did not answer: from its last answer before a failure to its first answer after. */
export function outages(t: { at: number; ok: boolean }[]): [number, number][] {
  const spans: [number, number][] = [];
  let lastOk: number | null = null;
  let down: number | null = null;
  for (const r of t) {
    if (!r.ok && down === null) down = lastOk ?? r.at;
    if (r.ok) {
      if (down !== null) spans.push([down, r.at]);
      down = null;
      lastOk = r.at;
    }
  }
  if (down !== null) spans.push([down, t.at(-1)?.at ?? down]);
  return spans;
}

export interface ReplaceGaps {
  /** per host: requests sent and failed, each outage in seconds */
  hosts: { host: string; sent: number; failed: number; gapsS: number[] }[];
  /** at every moment of the upgrades at least one host answered */
  othersKeptServing: boolean;
}

/** Deploys v1 of the replace stack, then upgrades to v2 and v3 while every host is loaded. */
export async function replaceUnderLoad(
  fleet: LocalFleet,
  hosts: string[],
  dir: string,
  stack: string,
  port: number,
): Promise<ReplaceGaps> {
  const first = houston(fleet, dir, "service", stack, "1");
  if (first.code !== 0) throw new Error(`deploy of ${stack} 1 failed: ${first.stderr}`);
  const upgrades = (async () => {
    for (const v of ["2", "3"]) {
      const r = await houstonAsync(fleet, dir, "service", stack, v);
      if (r.code !== 0 || !r.stderr.includes(`Replacing ${stack}@${Number(v) - 1}.service`))
        throw new Error(`upgrade of ${stack} to ${v} (stop then start) failed: ${r.stderr}`);
    }
  })();
  const lines = await Promise.all(hosts.map((h) => timeline(fleet.host(h).ip, port, upgrades)));
  await upgrades;
  const spans = lines.map(outages);
  // some moment when every host was out: the latest start of one span from each host before the earliest end
  const allOut = (i: number, from: number, to: number): boolean =>
    i === spans.length ||
    (spans[i] ?? []).some(
      ([a, b]) => Math.max(a, from) < Math.min(b, to) && allOut(i + 1, Math.max(a, from), Math.min(b, to)),
    );
  return {
    hosts: hosts.map((host, i) => ({
      host,
      sent: lines[i]?.length ?? 0,
      failed: (lines[i] ?? []).filter((r) => !r.ok).length,
      gapsS: (spans[i] ?? []).map(([a, b]) => (b - a) / 1000),
    })),
    othersKeptServing: !allOut(0, -Infinity, Infinity),
  };
}

function houstonAsync(fleet: LocalFleet, dir: string, ...args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [
      join(ROOT, "dist", "houston.js"),
      "-c",
      dir,
      "-e",
      "test",
      "--consul",
      fleet.consulAddr,
      ...args,
    ]);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code: code ?? 1, stderr }));
  });
}

function houston(fleet: LocalFleet, dir: string, ...args: string[]): { code: number; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "dist", "houston.js"), "-c", dir, "-e", "test", "--consul", fleet.consulAddr, ...args],
    { encoding: "utf8" },
  );
  return { code: r.status ?? 1, stderr: r.stderr };
}

/** Deploys v1, then upgrades to v2 and v3 under load; returns [failed, sent]. Throws if a deploy fails. */
export async function upgradeUnderLoad(
  fleet: LocalFleet,
  host: string,
  dir: string,
  stack: string,
  port: number,
): Promise<[number, number]> {
  const first = houston(fleet, dir, "service", stack, "1");
  if (first.code !== 0) throw new Error(`deploy of ${stack} 1 failed: ${first.stderr}`);
  const upgrades = (async () => {
    for (const v of ["2", "3"]) {
      const r = await houstonAsync(fleet, dir, "service", stack, v);
      if (r.code !== 0 || !r.stderr.includes(`Destroying ${stack}@${Number(v) - 1}.service`))
        throw new Error(`upgrade of ${stack} to ${v} failed: ${r.stderr}`);
    }
  })();
  const counted = await load(fleet.host(host).ip, port, upgrades);
  await upgrades;
  return counted;
}
