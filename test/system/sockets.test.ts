/**
 * Zero-downtime upgrades with systemd alone: a bounded load generator sends requests to a real
 * host while its service is upgraded v1 → v2 → v3 by the houston CLI. With [X-Houston] Socket=
 * every version inherits one listening socket: 0 failed requests. The same upgrades with each
 * version binding the port itself (SO_REUSEPORT, versions overlapped as Houston does) are counted
 * beside it. Also: while no version runs, the socket starts none by itself.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { get, upgradeUnderLoad, zeroDowntimeConfig } from "../../scripts/bench/zero-downtime.js";
import { houston } from "../helpers/cli.js";
import { ROOT } from "../harness/paths.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: [{ name: "zd1", meta: { role: "web" } }] });
});
afterAll(async () => fleet?.stop());

const config = zeroDowntimeConfig;
const upgrade = (dir: string, stack: string, port: number) => upgradeUnderLoad(fleet, "zd1", dir, stack, port);

describe("zero-downtime upgrades through a shared socket", () => {
  let withSocket: [number, number] = [0, 0];
  let binding: [number, number] = [0, 0];

  it("v1 → v2 → v3 under load with Socket=: no request fails", async () => {
    withSocket = await upgrade(config(), "zds", 8090);
    expect(withSocket[1]).toBeGreaterThan(100);
    expect(withSocket[0]).toBe(0);
    expect(await fleet.unitState("zd1", "zds.socket")).toBe("active");
  }, 600_000);

  it("the same upgrades with each version binding the port itself, counted beside it", async () => {
    binding = await upgrade(config(), "zdb", 8091);
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
