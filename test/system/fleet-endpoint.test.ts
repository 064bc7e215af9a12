/**
 * The fleet scheduler is never chosen silently (real hosts and agents, no fleetd): a config whose
 * environment names a `fleet:` endpoint deploys through fleetd, and the rollout says so on its
 * first line; with no fleetd to reach, the rollout fails quoting the scheduler agent's error
 * (connect ENOENT on the socket) instead of waiting out --timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston } from "../helpers/cli.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: [{ name: "fe1", meta: { role: "web" } }] });
});
afterAll(async () => fleet?.stop());

const SOCKET = "unix:///var/run/fleet.sock";

describe("a fleet: endpoint without fleetd", () => {
  it("says the rollout goes through fleetd, then fails with the agent's error", async () => {
    const dir = configDir({
      "manifest.yaml": `environments:\n  test:\n    fleet: ${SOCKET}\nshared-stacks:\n  fe: [app:1]\n`,
      "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
    });
    // bounded by the code, not by a timer here: the scheduler agent notes its fleet error on the
    // placement document at once, and the rollout gives up once it has stood for 5 s
    // (FLEET_UNREACHABLE_MS), far from the default --timeout (10 min)
    const d = await houston(fleet.consulAddr, dir, "standalone", "fe");
    expect(d.code, d.stderr).not.toBe(0);
    const first = d.stderr.split("\n")[0] ?? "";
    expect(first).toContain(
      `scheduling through fleetd at ${SOCKET}, as the config's fleet: endpoint says; \`scheduler: agents\` to use Houston's own`,
    );
    expect(d.stderr).toMatch(
      /no scheduler agent reached fleetd for 5s: fleet at unix:\/\/\/var\/run\/fleet.sock: .*ENOENT/,
    );
    expect(d.stderr).not.toMatch(/timed out/);
  });

  it("`scheduler: agents` next to the endpoint deploys through Houston's agents, without the line", async () => {
    const dir = configDir({
      "manifest.yaml": `environments:\n  test:\n    fleet: ${SOCKET}\n    scheduler: agents\nshared-stacks:\n  fe: [app:2]\n`,
      "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
    });
    const d = await houston(fleet.consulAddr, dir, "standalone", "fe");
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).not.toContain("scheduling through fleetd");
    expect(await fleet.unitState("fe1", "fe-app@2.service")).toBe("active");
  });
});
