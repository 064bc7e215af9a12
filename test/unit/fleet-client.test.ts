/**
 * The fleet edge against fleetd's recorded answers (../shared/data/fleet-api-v1, captured from the
 * real fleetd v1.0.0), replayed by a local server on a unix socket: empty collections as `{}`,
 * paging, error bodies, 503 until registered, a dropped connection.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, FleetError, FleetUnavailableError, retrying, sameOptions, unitOptions } from "../../shared/fleet.js";

const DATA = join(import.meta.dirname, "..", "..", "..", "shared", "data", "fleet-api-v1");
const recorded = (name: string): string =>
  existsSync(DATA) ? readFileSync(join(DATA, name), "utf8") : (FALLBACK[name] ?? "");
// the same bodies, for a checkout without ../shared (copied from the recordings)
const FALLBACK: Record<string, string> = {
  "with-systemd/01-machines-list.resp-body":
    '{"machines":[{"id":"3d1219c7c4c5404aaa1f6d2a48adfda4","metadata":{"region":"test","role":"web"},"primaryIP":"127.0.0.1"}]}',
  "with-systemd/02-units-list-empty.resp-body": "{}",
  "with-systemd/12-state-list.resp-body":
    '{"states":[{"hash":"659f","machineID":"3d1219c7c4c5404aaa1f6d2a48adfda4","name":"hello-global.service","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"},{"hash":"daae","machineID":"3d1219c7c4c5404aaa1f6d2a48adfda4","name":"hello.service","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"}]}',
  "with-systemd/20-err-unit-put-missing-no-options.resp-body":
    '{"error":{"code":409,"message":"unit does not exist and options field empty"}}',
  "misc/etcd-unavailable-503.resp-body":
    '{"error":{"code":503,"message":"fleet server unable to communicate with etcd"}}',
};

let server: Server;
let sock: string;
let unavailable = 2;
beforeAll(async () => {
  sock = join(mkdtempSync(join(tmpdir(), "fleet-sock-")), "fleet.sock");
  server = createServer((req, res) => {
    const send = (status: number, body: string): void => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(body);
    };
    const url = req.url ?? "";
    if (url === "/fleet/v1/machines") return send(200, recorded("with-systemd/01-machines-list.resp-body"));
    if (url === "/fleet/v1/units") return send(200, recorded("with-systemd/02-units-list-empty.resp-body"));
    if (url === "/fleet/v1/state")
      return send(
        200,
        '{"states":[' + JSON.stringify({ name: "a.service", machineID: "m1" }) + '],"nextPageToken":"p2"}',
      );
    if (url === "/fleet/v1/state?nextPageToken=p2") return send(200, recorded("with-systemd/12-state-list.resp-body"));
    if (url === "/fleet/v1/units/missing.service" && req.method === "PUT")
      return send(409, recorded("with-systemd/20-err-unit-put-missing-no-options.resp-body"));
    if (url === "/fleet/v1/units/missing.service")
      return send(404, '{"error":{"code":404,"message":"unit does not exist"}}');
    if (url === "/fleet/v1/units/new.service") return send(201, "");
    if (url === "/fleet/v1/busy") return send(503, recorded("misc/etcd-unavailable-503.resp-body"));
    if (url === "/fleet/v1/units/flaky.service") {
      if (unavailable-- > 0) return send(503, recorded("misc/etcd-unavailable-503.resp-body"));
      return send(204, "");
    }
    if (url === "/fleet/v1/units/dropped.service") return req.socket.destroy(); // as fleetd does (quirk 2)
    if (url === "/fleet/v1/units/slow.service") return void setTimeout(() => send(404, "{}"), 250);
    return send(404, '{"error":{"code":404,"message":"not found"}}');
  });
  await new Promise<void>((r) => server.listen(sock, r));
});
afterAll(() => {
  server.close();
  rmSync(dirname(sock), { recursive: true, force: true });
});

describe("the fleet edge", () => {
  it("reads machines, an empty collection ({}), and pages of /state", async () => {
    const f = new Fleet(`unix://${sock}`);
    expect(await f.machines()).toEqual([
      { id: "3d1219c7c4c5404aaa1f6d2a48adfda4", metadata: { region: "test", role: "web" }, primaryIP: "127.0.0.1" },
    ]);
    expect(await f.units()).toEqual([]);
    expect((await f.states()).map((s) => s.name)).toEqual(["a.service", "hello-global.service", "hello.service"]);
  });
  it("turns error bodies into messages; 404 is no unit", async () => {
    const f = new Fleet(`unix://${sock}`);
    expect(await f.unit("missing.service")).toBeNull();
    expect(await f.destroyUnit("missing.service")).toBe(false);
    await expect(f.putUnit("missing.service", [], "launched")).rejects.toThrow(
      /fleet PUT unit missing.service: 409 unit does not exist and options field empty/,
    );
    expect(await f.putUnit("new.service", [], "launched")).toBe("created");
  });
  it("503 and a dropped connection are transient, and retried until they pass", async () => {
    const f = new Fleet(`unix://${sock}`);
    const e = await f.unit("dropped.service").catch((err: unknown) => err);
    expect(e).toBeInstanceOf(FleetUnavailableError);
    expect(e).toBeInstanceOf(FleetError);
    await expect(new Fleet(`unix://${sock}`).putUnit("flaky.service", [], "launched")).rejects.toBeInstanceOf(
      FleetUnavailableError,
    );
    expect(await retrying(() => f.putUnit("flaky.service", [], "launched"), Date.now() + 60_000)).toBe("unchanged");
  });
  it("a request unanswered is said while it waits (every 10 s by default), and no more once answered", async () => {
    const said: string[] = [];
    const f = new Fleet(`unix://${sock}`, (what, waited, limit) => said.push(`${what} ${waited >= 50} ${limit}`), 60);
    expect(await f.unit("slow.service")).toBeNull();
    expect(said.length).toBeGreaterThanOrEqual(2);
    expect(new Set(said)).toEqual(new Set(["GET units/slow.service true 30000"]));
    const after = said.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(said.length).toBe(after);
  });
  it("refuses endpoints it cannot use, naming them", () => {
    expect(() => new Fleet("ftp://x")).toThrow(/expected http, https or unix/);
    expect(() => new Fleet("unix://relative.sock")).toThrow(/must be absolute/);
    expect(() => new Fleet("not a url")).toThrow(/is not a URL/);
  });
  it("unit options keep [X-Fleet] verbatim and compare in order", () => {
    const o = unitOptions("[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\n", "t");
    expect(o).toEqual([
      { section: "Unit", name: "Description", value: "x" },
      { section: "Service", name: "ExecStart", value: "/bin/true" },
      { section: "X-Fleet", name: "Global", value: "true" },
    ]);
    expect(sameOptions(o, [...o])).toBe(true);
    expect(sameOptions(o, [...o].reverse())).toBe(false);
  });
});
