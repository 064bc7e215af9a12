/**
 * A config written exactly in the original Houston's style deploys and upgrades unchanged at
 * default flags: no [X-Houston] section; the service unit registers itself in the host's Consul
 * agent (an ExecStartPost= that PUTs to it, as the seed's users did) with the bare version as its
 * tag, and the rollout confirms it by that (controller.py `_check_consul_for_service`).
 * Real Consul, two real systemd test hosts with their Consul clients and agents.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston } from "../helpers/cli.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "seed1", meta: { role: "web" } },
      { name: "seed2", meta: { role: "web" } },
    ],
  });
});
afterAll(async () => fleet?.stop());

// the seed's own idiom: register on start, deregister on stop, through the local agent
const shop = [
  "[Unit]",
  "Description=shop %i",
  "",
  "[Service]",
  "ExecStart=/bin/sleep infinity",
  `ExecStartPost=/usr/bin/curl -sf -X PUT -d '{"ID":"shop-%i","Name":"shop","Tags":["%i"]}' http://127.0.0.1:8500/v1/agent/service/register`,
  "ExecStopPost=/usr/bin/curl -sf -X PUT http://127.0.0.1:8500/v1/agent/service/deregister/shop-%i",
  "",
  "[X-Fleet]",
  "Global=true",
  "MachineMetadata=role=web",
  "",
].join("\n");
const dir = () =>
  configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  shop: []\n",
    "units/service/shop.service": shop,
  });

describe("a config in the seed's style", () => {
  it("is confirmed by its own bare-version registration, and upgrades", async () => {
    const d = dir();
    const v1 = await houston(fleet.consulAddr, d, "service", "shop", "1");
    expect(v1.code, v1.stderr).toBe(0);
    expect(v1.stderr).toContain("Validated service is running with Consul");
    const v2 = await houston(fleet.consulAddr, d, "service", "shop", "2");
    expect(v2.code, v2.stderr).toBe(0);
    expect(v2.stderr).toContain("Validated service is running with Consul");
    expect(v2.stderr).toContain("Destroying shop@1.service");
    const { entries } = await fleet.consul.healthService("shop", { passing: true });
    expect(entries.map((e) => `${e.Node.Node}:${(e.Service.Tags ?? []).join(",")}`).sort()).toEqual([
      "seed1:2",
      "seed2:2",
    ]);
  });

  it("a version that never registers fails after -d × -m, saying what it waited for", async () => {
    const d = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  mute: []\n",
      "units/service/mute.service": shop.replaceAll("shop", "mute").replace(/^ExecStartPost=.*$/m, ""),
    });
    // a unit that never registers: with -d 1 -m 3 the wait is bounded by 3 s, not --timeout
    const r = await houston(fleet.consulAddr, d, "-d", "1", "-m", "3", "service", "mute", "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/mute@1\.service failed on seed\d: it was not registered with tag 1 or version:1 yet/);
    // who was to register it, said before the wait and with the failure
    const who =
      "the unit registers it itself (mute@1.service declares no [X-Houston] ServicePort=); -s skips this check";
    expect(r.stderr).toContain(`INFO     mute in Consul: ${who}`);
    expect(r.stderr).toMatch(new RegExp(`yet after \\d+s: ${who.replace(/[.()[\]]/g, "\\$&")}`));
  });
});
