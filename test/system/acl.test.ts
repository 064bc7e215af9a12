/**
 * A full deploy on a Consul with ACLs on and default deny: each host's agent runs with its own
 * least-privilege token (houston-agent-<node>), the controller with the controller token from
 * `houston acl bootstrap-tokens`, the operator token reads status.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { bootstrapTokens, configDir, houston } from "../helpers/cli.js";

const MASTER = "houston-test-management-token";
let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "acl1", meta: { role: "web" } },
      { name: "acl2", meta: { role: "web" } },
    ],
    acl: MASTER,
    aclStacks: ["web"],
  });
});
afterAll(async () => fleet?.stop());

describe("deploy with least-privilege tokens (default deny)", () => {
  it("the controller token deploys a service confirmed in Consul; the operator token reads status; agents used their own tokens", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  web: [cache:1]\n",
      "units/shared/cache.service": "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Houston]\nMinHealthy=0\n", // not about confirmation
      "units/service/web.service":
        "[Service]\nExecStart=/usr/bin/python3 -m http.server 8088 --bind 127.0.0.1\n\n[X-Houston]\nInstances=2\nServicePort=8088\nServiceCheckInterval=1s\n",
    });
    const tokens = await bootstrapTokens(fleet.consulAddr, dir, MASTER, ["acl1", "acl2"]);
    const d = await houston(fleet.consulAddr, dir, "--token", tokens.controller!, "service", "web", "1");
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toContain("Validated service is running with Consul");
    for (const h of ["acl1", "acl2"]) expect(await fleet.unitState(h, "web@1.service")).toBe("active");
    const s = await houston(fleet.consulAddr, dir, "--token", tokens.operator!, "status", "web");
    expect(s.code, s.stderr).toBe(0);
    const denied = await houston(fleet.consulAddr, dir, "--token", tokens.operator!, "remove", "web");
    expect(denied.code).toBe(5);
    expect(denied.stderr).toMatch(/it needs /);
  });
});
