/**
 * The agent's trust boundary on a real systemd host: a stack cannot shadow a unit systemd already
 * has (vendor template instance, runtime unit), cannot take over another stack's unit, and — with
 * a trusted key — nothing is applied from a spec that is unsigned, tampered with, or replayed.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { AgentRecordSchema, decodeJson } from "../../shared/spec.js";
import { configDir, houston } from "../helpers/cli.js";
import { dep, eventually, planUnits, publish, report, reportAt, unitText } from "../helpers/specs.js";

let fleet: LocalFleet;
const H = "tr1";
beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: [{ name: H, meta: { role: "web" } }] });
});
afterAll(async () => fleet?.stop());

const c = () => fleet.consul;
const kv = () => fleet.kv;
const unitFile = (unit: string) => join(fleet.host(H).root, "etc/systemd/system", unit);
const sleeper = unitText("ExecStart=/bin/sleep infinity");
const errorsOf = (stack: string, re: RegExp) =>
  eventually(`${stack} to report ${re}`, async () => {
    const r = await report(c(), kv(), H, stack);
    if (r?.errors.some((e) => re.test(e))) return r;
    throw new Error(`last report: ${JSON.stringify(r)}`);
  });
const mainPid = async (unit: string) =>
  (await fleet.shell(H, "systemctl", "show", "-p", "MainPID", "--value", unit)).trim();

describe("a stack touches only its own units (real systemd)", () => {
  it("a name systemd instantiates from a vendor template is refused, not shadowed", async () => {
    const vendorDir = join(fleet.host(H).root, "usr/lib/systemd/system");
    mkdirSync(vendorDir, { recursive: true });
    writeFileSync(join(vendorDir, "vendor-x@.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    await fleet.shell(H, "systemctl", "daemon-reload");
    await publish(c(), kv(), "vendor", await planUnits(c(), kv(), "vendor", [dep("x", "1", sleeper)]));
    await errorsOf(
      "vendor",
      /systemd already has vendor-x@1.service \(loaded from (\/usr)?\/lib\/systemd\/system\/vendor-x@.service\)/,
    );
    expect(existsSync(unitFile("vendor-x@1.service"))).toBe(false);
    expect(await fleet.unitState(H, "vendor-x@1.service")).toBe("inactive");
  });

  it("a runtime unit of that name is refused too", async () => {
    await fleet.shell(
      H,
      "sh",
      "-c",
      "mkdir -p /run/systemd/system && printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /run/systemd/system/rt-x@1.service && systemctl daemon-reload",
    );
    await publish(c(), kv(), "rt", await planUnits(c(), kv(), "rt", [dep("x", "1", sleeper)]));
    await errorsOf("rt", /systemd already has rt-x@1.service \(loaded from \/run\/systemd\/system\/rt-x@1.service\)/);
    expect(existsSync(unitFile("rt-x@1.service"))).toBe(false);
  });

  it("another stack's unit is not taken over; the owner's unit keeps running untouched", async () => {
    const owned = await planUnits(c(), kv(), "owner", [dep("beat", "1", sleeper)]);
    await reportAt(c(), kv(), H, "owner", await publish(c(), kv(), "owner", owned), {
      "owner-beat@1.service": "active",
    });
    const before = readFileSync(unitFile("owner-beat@1.service"), "utf8");
    const pid = await mainPid("owner-beat@1.service");
    // stack "owner-beat" renders its service to the same name
    const forged = {
      ...owned[0]!,
      stack: "owner-beat",
      component: null,
      role: "service" as const,
      text: unitText("ExecStart=/bin/sh -c 'echo pwned; sleep infinity'"),
    };
    await publish(c(), kv(), "owner-beat", [forged]);
    await errorsOf("owner-beat", /unit owner-beat@1.service is owned by stack owner; not taking it over/);
    expect(readFileSync(unitFile("owner-beat@1.service"), "utf8")).toBe(before);
    expect(await mainPid("owner-beat@1.service")).toBe(pid);
  });

  it("a spec written by hand naming a system unit is refused by the agent", async () => {
    const spec = {
      schema: 1,
      stack: "user",
      generation: 1,
      environment: "test",
      createdAt: "",
      deployment: { type: "standalone", name: "user", version: null, group: null },
      units: [
        {
          name: "user@0.service",
          stack: "user",
          component: null,
          group: null,
          version: "0",
          role: "service",
          text: sleeper,
          placements: [{ global: true, metadata: {} }],
        },
      ],
    };
    await c().kvPut(kv().spec("user"), JSON.stringify(spec));
    await errorsOf("user", /user@0.service would shadow the system's user@ units/);
    expect(existsSync(unitFile("user@0.service"))).toBe(false);
  });
});

describe("signed specs (real agent with --trust)", () => {
  let keyId = "";
  let keyFile = "";
  it("keygen writes a key pair; the agent restarted with --trust says which key it trusts", async () => {
    const dir = configDir({ "manifest.yaml": "environments:\n  test: {}\n" });
    const k = await houston(fleet.consulAddr, dir, "keygen", "--out", join(dir, "signing"));
    expect(k.code, k.stderr).toBe(0);
    keyId = /key ([0-9a-f]{16})/.exec(k.stderr)?.[1] ?? "";
    keyFile = join(dir, "signing.key");
    expect(keyId).toHaveLength(16);
    const again = await houston(fleet.consulAddr, dir, "keygen", "--out", join(dir, "signing"));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exist; existing keys are never overwritten/);
    const trustDir = join(fleet.host(H).root, "etc/houston/trust");
    mkdirSync(trustDir, { recursive: true });
    writeFileSync(join(trustDir, "ci.pub"), readFileSync(join(dir, "signing.pub")));
    appendFileSync(join(fleet.host(H).root, "etc/houston/agent.env"), "HOUSTON_TRUST=/etc/houston/trust\n");
    await c().kvDelete(kv().agent(H));
    await fleet.shell(H, "systemctl", "restart", "houston-agent.service");
    await eventually("the agent record to name its trusted key", async () => {
      const e = await c().kvGet(kv().agent(H));
      return e && decodeJson(AgentRecordSchema, "agent", e.value).trustedKeys?.includes(keyId);
    });
    const nodes = await houston(fleet.consulAddr, dir, "nodes");
    expect(nodes.stdout, nodes.stderr).toMatch(new RegExp(`${H} .*signed by ${keyId}`));
  });

  it("unsigned: refused and reported; signed by the controller: applied", async () => {
    const units = await planUnits(c(), kv(), "sig", [dep("app", "1", sleeper)]);
    await publish(c(), kv(), "sig", units);
    await errorsOf("sig", /not signed and this agent trusts only signed specs/);
    expect(existsSync(unitFile("sig-app@1.service"))).toBe(false);
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  sig: [app:1]\n",
      "units/shared/app.service": sleeper,
    });
    const d = await houston(fleet.consulAddr, dir, "--signing-key", keyFile, "standalone", "sig");
    expect(d.code, d.stderr).toBe(0);
    expect(await fleet.unitState(H, "sig-app@1.service")).toBe("active");
  });

  it("tampered unit text and a replayed older spec are refused; the last good spec stays in force", async () => {
    const good = (await c().kvGet(kv().spec("sig")))!;
    const goodSig = (await c().kvGet(kv().signature("sig")))!;
    const pid = await mainPid("sig-app@1.service");
    const tampered = good.value
      .toString()
      .replace("ExecStart=/bin/sleep infinity", "ExecStart=/bin/sh -c 'touch /pwned; sleep infinity'");
    await c().kvPut(kv().spec("sig"), tampered);
    await errorsOf("sig", /does not match the spec \(tampered\?\)/);
    expect(existsSync(join(fleet.host(H).root, "pwned"))).toBe(false);
    // a newer signed generation, then the old signed one written back (spec and signature)
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  sig: [app:2]\n",
      "units/shared/app.service": sleeper,
    });
    const d = await houston(fleet.consulAddr, dir, "--signing-key", keyFile, "standalone", "sig");
    expect(d.code, d.stderr).toBe(0);
    await c().txn([
      { verb: "set", key: kv().spec("sig"), value: good.value },
      { verb: "set", key: kv().signature("sig"), value: goodSig.value },
    ]);
    await errorsOf("sig", /is older than generation \d+ already accepted \(a replayed spec\?\)/);
    expect(await fleet.unitState(H, "sig-app@2.service")).toBe("active");
    expect(existsSync(unitFile("sig-app@1.service"))).toBe(false);
    expect(pid).not.toBe("");
  });

  it("after a key rotation (a second .pub in the trust directory) nodes lists both keys", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  sig: [app:3]\n",
      "units/shared/app.service": sleeper,
    });
    const k = await houston(fleet.consulAddr, dir, "keygen", "--out", join(dir, "next"));
    expect(k.code, k.stderr).toBe(0);
    const nextId = /key ([0-9a-f]{16})/.exec(k.stderr)?.[1] ?? "";
    writeFileSync(join(fleet.host(H).root, "etc/houston/trust", "next.pub"), readFileSync(join(dir, "next.pub")));
    // no restart: the next spec the agent reads is signed by the new key and applied
    const d = await houston(fleet.consulAddr, dir, "--signing-key", join(dir, "next.key"), "standalone", "sig");
    expect(d.code, d.stderr).toBe(0);
    await eventually("the agent record to name both keys", async () => {
      const e = await c().kvGet(kv().agent(H));
      const keys = e ? (decodeJson(AgentRecordSchema, "agent", e.value).trustedKeys ?? []) : [];
      return keys.includes(keyId) && keys.includes(nextId);
    });
    const nodes = await houston(fleet.consulAddr, dir, "nodes");
    expect(nodes.stdout, nodes.stderr).toMatch(new RegExp(`${H} .*signed by (${keyId},${nextId}|${nextId},${keyId})`));
    const json = await houston(fleet.consulAddr, dir, "--json", "nodes");
    const rec = (JSON.parse(json.stdout) as { nodes: { node: string; trustedKeys: string[] }[] }).nodes.find(
      (n) => n.node === H,
    );
    expect(rec?.trustedKeys.sort()).toEqual([keyId, nextId].sort());
  });

  it("a deploy without --signing-key fails with the agent's refusal, not a timeout", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  sig: [app:9]\n",
      "units/shared/app.service": sleeper,
    });
    // the rollout ends when the report naming the refusal arrives (a blocking query), not at a
    // timer: the default --timeout (10 min) and -d × -m are far away
    const d = await houston(fleet.consulAddr, dir, "standalone", "sig");
    expect(d.code, d.stderr).not.toBe(0);
    expect(d.stderr).toMatch(
      new RegExp(`${H} refused generation \\d+: the spec is not signed and this agent trusts only signed specs`),
    );
    expect(d.stderr).not.toMatch(/timed out/);
    expect(await fleet.unitState(H, "sig-app@3.service")).toBe("active");
    expect(existsSync(unitFile("sig-app@9.service"))).toBe(false);
  });
});
