/**
 * Zero-downtime upgrades with systemd alone: a bounded load generator sends requests to a real
 * host while its service is upgraded v1 → v2 → v3 by the houston CLI. With [X-Houston] Socket=
 * every version inherits one listening socket: 0 failed requests. The same upgrades with each
 * version binding the port itself (SO_REUSEPORT, versions overlapped as Houston does) are counted
 * beside it. Also: while no version runs, the socket starts none by itself.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../../scripts/lib/local-fleet.js";
import { configDir, houston } from "../helpers/cli.js";
import { ROOT } from "../helpers/consul.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: [{ name: "zd1", meta: { role: "web" } }] });
});
afterAll(async () => fleet?.stop());

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
else:
    srv = S(("0.0.0.0", PORT), H)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
srv.serve_forever(); srv.server_close()
`;
const unit = (port: number, socket: boolean) =>
  `[Service]\nExecStart=/usr/bin/python3 /opt/zd/server.py %i ${port}\n\n[X-Fleet]\nMachineMetadata=role=web\n\n[X-Houston]\n${socket ? `Socket=${port}\n` : ""}ServicePort=${port}\nServiceCheckInterval=1s\n`;
const config = () =>
  configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  zds: []\n  zdb: []\n",
    "units/service/zds.service": unit(8090, true),
    "units/service/zdb.service": unit(8091, false),
    "files/service/zds.yaml": `- path: /opt/zd/server.py\n  content: |\n${SERVER.replace(/^/gm, "    ")}\n`,
    "files/service/zdb.yaml": `- path: /opt/zd/server.py\n  content: |\n${SERVER.replace(/^/gm, "    ")}\n`,
  });

function get(host: string, port: number): Promise<boolean> {
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
async function load(host: string, port: number, done: Promise<unknown>): Promise<[number, number]> {
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

async function upgradeUnderLoad(dir: string, stack: string, port: number): Promise<[number, number]> {
  const first = await houston(fleet.consulAddr, dir, "service", stack, "1");
  expect(first.code, first.stderr).toBe(0);
  const upgrades = (async () => {
    for (const v of ["2", "3"]) {
      const r = await houston(fleet.consulAddr, dir, "service", stack, v);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`Destroying ${stack}@${Number(v) - 1}.service`);
    }
  })();
  const counted = await load(fleet.host("zd1").ip, port, upgrades);
  await upgrades;
  return counted;
}

describe("zero-downtime upgrades through a shared socket", () => {
  let withSocket: [number, number] = [0, 0];
  let binding: [number, number] = [0, 0];

  it("v1 → v2 → v3 under load with Socket=: no request fails", async () => {
    withSocket = await upgradeUnderLoad(config(), "zds", 8090);
    expect(withSocket[1]).toBeGreaterThan(100);
    expect(withSocket[0]).toBe(0);
    expect(await fleet.unitState("zd1", "zds.socket")).toBe("active");
  }, 600_000);

  it("the same upgrades with each version binding the port itself, counted beside it", async () => {
    binding = await upgradeUnderLoad(config(), "zdb", 8091);
    expect(binding[1]).toBeGreaterThan(100);
    const line = `zero-downtime: with Socket= ${withSocket[0]} failed of ${withSocket[1]}; binding the port itself ${binding[0]} failed of ${binding[1]}`;
    process.stderr.write(`${line}\n`);
    mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
    writeFileSync(
      join(ROOT, "test-artifacts", "zero-downtime.json"),
      JSON.stringify(
        { socket: { failed: withSocket[0], sent: withSocket[1] }, binding: { failed: binding[0], sent: binding[1] } },
        null,
        2,
      ),
    );
  }, 600_000);

  it("with no version running, a connection waits in the socket's queue and starts no version", async () => {
    const ip = fleet.host("zd1").ip;
    await fleet.shell("zd1", "systemctl", "stop", "zds@3.service");
    const pending = get(ip, 8090);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await fleet.unitState("zd1", "zds@3.service")).toBe("inactive");
    expect(await fleet.unitState("zd1", "zds.socket")).toBe("active");
    await fleet.shell("zd1", "systemctl", "start", "zds@3.service");
    expect(await pending).toBe(true); // answered by the version started later, from the same queue
  });

  it("status shows the socket and the versions that share it; removing the stack removes it", async () => {
    const dir = config();
    const st = await houston(fleet.consulAddr, dir, "status", "zds");
    expect(st.stdout).toMatch(/zd1\s+zds.socket\s+shared by 3\s+active/);
    const rm = await houston(fleet.consulAddr, dir, "remove", "zds");
    expect(rm.code, rm.stderr).toBe(0);
    expect(["inactive", "unknown"]).toContain(await fleet.unitState("zd1", "zds.socket"));
  });
});
