/**
 * The contract every scheduler backend passes (as hono runs one suite over all its routers): each
 * member of the Scheduler interface, against both backends, over an in-memory Consul. What a
 * backend refuses or does differently is stated per backend in BACKENDS (its `expect` row), and a
 * case a backend skips says why. A new backend (controller/scheduler/<name>.ts) is added to BACKENDS.
 */
import { describe, expect, it } from "vitest";
import { agentsScheduler } from "../../controller/scheduler/agents.js";
import { TimeoutError } from "../../controller/scheduler/agent-reports.js";
import { fleetScheduler } from "../../controller/scheduler/fleet.js";
import type { Scheduler } from "../../controller/scheduler/scheduler.js";
import { NO_PLACEMENTS as NONE, UnplaceableUnitError, type HostView } from "../../controller/scheduler/targets.js";
import { Consul, type HealthEntry, type KvEntry } from "../../shared/consul.js";
import { ConfigError } from "../../shared/errors.js";
import { KvLayout } from "../../shared/kv-layout.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { AGENT_SERVICE, type StatusReport, type UnitSpec } from "../../shared/spec.js";

/** Consul's KV (reads) and health API in memory: blocking list queries wait for the next write (or abort). */
class MemoryConsul extends Consul {
  private readonly kv = new Map<string, Buffer>();
  private index = 1;
  private readonly changed = new EventTarget();
  health: HealthEntry[] = [];
  constructor() {
    super({ addr: "http://127.0.0.1:1" });
  }
  put(key: string, value: unknown): void {
    this.kv.set(key, Buffer.from(typeof value === "string" ? value : JSON.stringify(value)));
    this.index++;
    this.changed.dispatchEvent(new Event("change"));
  }
  override async kvListAt(
    prefix: string,
    index: number,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ entries: KvEntry[]; index: number }> {
    if (index > 0 && index === this.index && !opts.signal?.aborted)
      await new Promise<void>((resolve) => {
        this.changed.addEventListener("change", () => resolve(), { once: true });
        opts.signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    const entries = [...this.kv]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, value]) => ({ key, value, modifyIndex: this.index, createIndex: 1, flags: 0 }));
    return { entries, index: this.index };
  }
  override async kvGet(key: string): Promise<KvEntry | null> {
    const value = this.kv.get(key);
    return value ? { key, value, modifyIndex: this.index, createIndex: 1, flags: 0 } : null;
  }
  override async healthService(): Promise<{ entries: HealthEntry[]; index: number }> {
    return { entries: this.health, index: 1 };
  }
}

const KV = new KvLayout();

interface Backend {
  make: (consul: Consul) => Scheduler;
  /** what this backend answers where backends differ */
  expect: {
    /** checkRollout with a canary or --max-parallel: null (accepted), or the refusal's flag and text */
    batches: { flag: string; message: string } | null;
    instances: string | null;
    socket: string | null;
    /** [X-Houston] ServicePort=auto or a range: null (each version gets its port) or the refusal */
    dynamicPort: RegExp | null;
    /** how a unit needs its predecessor (not the file unit) */
    chain: "Requires" | "Wants";
    eachRequiresArchive: boolean;
    specFields: object;
    planNote: RegExp | null;
    /** the archive unit's text: as the spec has it, or rewritten for the backend */
    archiveTextRewritten: boolean;
    afterConfirmed: string[];
    /** the units afterConfirmed("web", …) sets to destroy */
    destroying: string[];
    /** adoptedOf("web") with fleet/owned adopting a@1 for web, b@1 for other */
    adoptedOf: string[];
  };
  /** cases this backend skips, and why */
  skip: Partial<Record<"waits until every non-global unit is placed", string>>;
}

const RELEASED = ["old-web.service", "kept.service"];
const BACKENDS: Record<string, Backend> = {
  agents: {
    make: (c) => agentsScheduler(c, KV),
    expect: {
      batches: null,
      instances: null,
      socket: null,
      dynamicPort: null,
      chain: "Requires",
      eachRequiresArchive: false,
      specFields: {},
      planNote: null,
      archiveTextRewritten: false,
      afterConfirmed: [],
      destroying: [],
      adoptedOf: [],
    },
    skip: {
      "waits until every non-global unit is placed":
        "the agents' scheduler places a generation's units in one document write",
    },
  },
  fleet: {
    make: (c) => fleetScheduler(c, KV, async (stack) => (stack === "web" ? RELEASED : [])),
    expect: {
      batches: {
        flag: "--canary",
        message: "fleet places and starts the units itself: canaries and batches need the agents scheduler",
      },
      instances:
        "[X-Houston] Instances=2 needs the agents scheduler: fleet runs one copy of a unit (this environment's scheduler is fleet)",
      socket: "[X-Houston] Socket= needs the agents scheduler (this environment's scheduler is fleet)",
      dynamicPort:
        /^needs the agents scheduler: fleet starts the units itself, before an agent could hand the unit its port/,
      chain: "Wants",
      eachRequiresArchive: true,
      specFields: { scheduler: "fleet" },
      planNote: /^Scheduler: fleet \(.*fleet picks the machines/,
      archiveTextRewritten: true,
      afterConfirmed: [
        "Destroying old-web.service (adopted from the original Houston)",
        "kept.service taken over in place (adopted from the original Houston, now Houston's own)",
      ],
      destroying: ["old-web.service"],
      adoptedOf: ["a@1.service", "c@1.service"],
    },
    skip: {},
  },
};

const host = (node: string, meta: Record<string, string>): HostView => ({ node, meta, agent: "passing" });
const unit = (name: string, metadata: Record<string, string[]>, global = false): UnitSpec => ({
  name: `${name}@1.service`,
  stack: name,
  component: null,
  group: null,
  version: "1",
  role: "service",
  text: "[Service]\nExecStart=/bin/true\n",
  placements: [{ global, metadata }],
});
const HOSTS = [
  host("a", { role: "web", zone: "1" }),
  host("b", { role: "web", zone: "2" }),
  host("c", { role: "db", zone: "1" }),
];
const report = (node: string, stack: string, generation: number, active: string[]): StatusReport => ({
  schema: 1,
  node,
  stack,
  generation,
  desiredGeneration: generation,
  converging: false,
  units: active.map((name) => ({ name, activeState: "active", subState: "running" })),
  archives: [],
  errors: [],
  updatedAt: "",
});
const placement = (stack: string, generation: number, units: Record<string, string[]>): PlacementDoc => ({
  schema: 1,
  stack,
  generation,
  units,
  unplaced: {},
  moves: [],
  scheduler: "a",
  updatedAt: "",
});
const agentHealth = (node: string, status: string): HealthEntry => ({
  Node: { Node: node, Address: "127.0.0.1", Meta: {} },
  Service: { ID: AGENT_SERVICE, Service: AGENT_SERVICE, Tags: [], Port: 1 },
  Checks: [{ CheckID: "c", Status: status, Output: "" }],
});
const soon = (): number => Date.now() + 5_000;

for (const [name, b] of Object.entries(BACKENDS)) {
  /** a case this backend may skip: skipped with its reason in the title */
  const may = (title: keyof Backend["skip"]) => {
    const why = b.skip[title];
    return { run: why ? it.skip : it, title: why ? `${title} (skipped: ${why})` : title };
  };
  describe(`scheduler contract: ${name}`, () => {
    const s = b.make(new MemoryConsul());
    it("is named", () => expect(s.name).toBe(name));

    describe("place (pure)", () => {
      it("places every unit on hosts whose metadata matches, and only there", () => {
        const t = s.place([unit("web", { role: ["web"] }), unit("db", { role: ["db"] })], HOSTS, NONE);
        expect(t.map((x) => x.name)).toEqual(["web@1.service", "db@1.service"]);
        expect(t[0]!.hosts).toHaveLength(1); // one machine, as fleet
        for (const h of t[0]!.hosts) expect(["a", "b"]).toContain(h);
        expect(t[1]!.hosts).toEqual(["c"]);
      });
      it("global units go to every matching host", () => {
        expect(s.place([unit("g", {}, true)], HOSTS, NONE)[0]!.hosts).toEqual(["a", "b", "c"]);
      });
      it("several keys must all match", () => {
        expect(s.place([unit("w1", { role: ["web"], zone: ["1"] })], HOSTS, NONE)[0]!.hosts).toEqual(["a"]);
      });
      it("a unit no host can take is an error naming what it wants", () => {
        expect(() => s.place([unit("x", { role: ["cache"] })], HOSTS, NONE)).toThrow(UnplaceableUnitError);
        expect(() => s.place([unit("x", { role: ["cache"] })], HOSTS, NONE)).toThrow(
          /x@1.service cannot be placed: no machine satisfies role=cache/,
        );
        expect(() => s.place([unit("x", { role: ["cache"] }, true)], HOSTS, NONE)).toThrow(
          /x@1.service targets no host: it wants role=cache/,
        );
      });
      it("is deterministic", () => {
        const units = [unit("web", { role: ["web"] }), unit("g", {}, true)];
        expect(s.place(units, [...HOSTS].reverse(), NONE)).toEqual(s.place(units, HOSTS, NONE));
      });
      it("Instances=N: N distinct machines; more than there are is an error", () => {
        const two = { ...unit("web", {}), placements: [{ global: false, metadata: { role: ["web"] }, instances: 2 }] };
        expect(s.place([two], HOSTS, NONE)[0]!.hosts).toEqual(["a", "b"]);
        const three = { ...two, placements: [{ global: false, metadata: { role: ["web"] }, instances: 3 }] };
        expect(() => s.place([three], HOSTS, NONE)).toThrow(/for 1 of 3 instances/);
      });
    });

    describe("what it can do and what it refuses", () => {
      it("checkRollout: one batch is always fine; a canary or batches as stated", () => {
        expect(() => s.checkRollout({ canary: 0, maxParallel: null })).not.toThrow();
        const refusal = b.expect.batches;
        if (refusal === null) {
          expect(() => s.checkRollout({ canary: 1, maxParallel: 2 })).not.toThrow();
          return;
        }
        const err = (() => {
          try {
            s.checkRollout({ canary: 1, maxParallel: null });
          } catch (e) {
            return e;
          }
          return null;
        })();
        expect(err).toBeInstanceOf(ConfigError);
        expect(err instanceof ConfigError && err.file).toBe(refusal.flag);
        expect(err instanceof ConfigError && err.message).toContain(refusal.message);
        expect(() => s.checkRollout({ canary: 0, maxParallel: 2 })).toThrow(/--max-parallel/);
      });
      it("unit rules: Instances=, Socket=, ServicePort=auto, how a chain is tied", () => {
        expect(s.unitRules.refuseInstances(2)).toBe(b.expect.instances);
        expect(s.unitRules.refuseSocket).toBe(b.expect.socket);
        if (b.expect.dynamicPort === null) expect(s.unitRules.refuseDynamicPort).toBeNull();
        else expect(s.unitRules.refuseDynamicPort).toMatch(b.expect.dynamicPort);
        expect(s.unitRules.chainNeed(false)).toBe(b.expect.chain);
        expect(s.unitRules.chainNeed(true)).toBe("Requires"); // the file unit is always required
        expect(s.unitRules.eachRequiresArchive).toBe(b.expect.eachRequiresArchive);
      });
      it("what a spec written for it carries, and what plan says", () => {
        expect(s.specFields).toEqual(b.expect.specFields);
        if (b.expect.planNote === null) expect(s.planNote).toBeNull();
        else expect(s.planNote).toMatch(b.expect.planNote);
      });
      it("unit texts: an ordinary unit as the spec has it; the file unit as stated", () => {
        const u = unit("web", { role: ["web"] });
        expect(s.unitText("web", u)).toBe(u.text);
        const archive: UnitSpec = { ...u, name: "web-files@abc.service", role: "archive", archive: "ab".repeat(32) };
        if (b.expect.archiveTextRewritten) expect(s.unitText("web", archive)).toMatch(/\[X-Fleet\]\nGlobal=true/);
        else expect(s.unitText("web", archive)).toBe(archive.text);
      });
      it("after confirmation: what else it does, as lines to show", async () => {
        expect(await s.afterConfirmed("web", ["web@2.service", "kept.service"])).toEqual({
          lines: b.expect.afterConfirmed,
          destroying: b.expect.destroying,
        });
        expect(await s.afterConfirmed("other", [])).toEqual({ lines: [], destroying: [] });
      });
      it("destroyedBy: waits (blocking) until what it set to destroy is destroyed, or says what is left", async () => {
        const c = new MemoryConsul();
        const sched = b.make(c);
        const going = b.expect.destroying;
        c.put(KV.fleetOwned, { schema: 1, units: Object.fromEntries(going.map((n) => [n, "web"])) });
        const heard: string[][] = [];
        // nothing destroyed by the deadline: all of it is left, and was said
        expect(await sched.destroyedBy(going, Date.now() + 200, (p) => heard.push(p))).toEqual(going);
        if (going.length > 0) expect(heard[0]).toEqual(going);
        // an unreadable fleet/owned: pending, and why
        if (going.length > 0) {
          c.put(KV.fleetOwned, "{not json");
          const problems: (string | null)[] = [];
          expect(await sched.destroyedBy(going, Date.now() + 200, (_p, why) => problems.push(why))).toEqual(going);
          expect(problems[0]).toMatch(/fleet\/owned/);
        }
        // the scheduler agent forgets them once fleet has destroyed them: the wait ends then
        const done = sched.destroyedBy(going, Date.now() + 30_000, () => undefined);
        setTimeout(() => c.put(KV.fleetOwned, { schema: 1, units: {} }), 50);
        expect(await done).toEqual([]);
      });
      it("adoptedOf: the units another tool left that a failed deploy returns to", async () => {
        const c = new MemoryConsul();
        expect(await b.make(c).adoptedOf("web")).toEqual([]);
        const adopted = { "c@1.service": "web", "b@1.service": "other", "a@1.service": "web" };
        c.put(KV.fleetOwned, { schema: 1, units: {}, adopted });
        expect(await b.make(c).adoptedOf("web")).toEqual(b.expect.adoptedOf);
      });
    });

    describe("hosts, view, reports (I/O)", () => {
      it("hosts: agents registered with a Consul check, with their record's metadata and that check", async () => {
        const c = new MemoryConsul();
        c.put(KV.agent("a"), {
          schema: 1,
          node: "a",
          meta: { role: "web" },
          version: "1",
          startedAt: "",
          machineId: "m",
        });
        c.put(KV.agent("b"), { schema: 1, node: "b", meta: {}, version: "1", startedAt: "" });
        c.put(KV.agent("gone"), { schema: 1, node: "gone", meta: {}, version: "1", startedAt: "" });
        c.put(KV.agent("bad"), "{not json");
        c.health = [agentHealth("b", "critical"), agentHealth("a", "passing")];
        expect(await b.make(c).hosts()).toEqual([
          { node: "a", meta: { role: "web" }, machineId: "m", agent: "passing" },
          { node: "b", meta: {}, agent: "critical" },
        ]);
      });
      it("view: live specs and placement documents, unreadable ones left out", async () => {
        const c = new MemoryConsul();
        c.put(KV.placement("web"), placement("web", 3, { "web@1.service": ["a"] }));
        c.put(KV.placement("bad"), "{");
        c.put(KV.spec("bad"), "{");
        const v = await b.make(c).view();
        expect(v.specs).toEqual([]);
        expect([...v.placements.keys()]).toEqual(["web"]);
      });
      it("reports: every readable report, by stack then node", async () => {
        const c = new MemoryConsul();
        c.put(KV.stackStatus("a", "web"), report("a", "web", 3, ["web@1.service"]));
        c.put(KV.stackStatus("b", "web"), "{");
        const r = await b.make(c).reports();
        expect([...r.keys()]).toEqual(["web"]);
        expect([...(r.get("web")?.keys() ?? [])]).toEqual(["a"]);
      });
      it("follow: waits for the report that satisfies the check (no polling)", async () => {
        const c = new MemoryConsul();
        const sched = b.make(c);
        const got = sched.follow(
          "web",
          soon(),
          (r) => (r.get("a")?.generation === 4 ? "seen" : undefined),
          () => "waiting",
        );
        c.put(KV.stackStatus("a", "web"), report("a", "web", 3, []));
        c.put(KV.stackStatus("a", "web"), report("a", "web", 4, []));
        expect(await got).toBe("seen");
      });
      it("follow: a TimeoutError carrying describe() at the deadline; ends early on abort", async () => {
        const sched = b.make(new MemoryConsul());
        await expect(
          sched.follow(
            "web",
            Date.now() + 50,
            () => undefined,
            () => "still waiting",
          ),
        ).rejects.toThrow(new TimeoutError("still waiting"));
        const ac = new AbortController();
        const aborted = sched.follow(
          "web",
          soon(),
          () => undefined,
          () => "aborted",
          ac.signal,
        );
        ac.abort();
        await expect(aborted).rejects.toThrow(TimeoutError);
      });
    });

    describe("placed (I/O)", () => {
      it("waits for placements of the written generation; global units go to the matching hosts", async () => {
        const c = new MemoryConsul();
        const units = [unit("web", { role: ["web"] }), unit("g", { role: ["web"] }, true)];
        const got = b.make(c).placed("web", 4, units, HOSTS, soon());
        c.put(KV.placement("web"), placement("web", 3, { "web@1.service": ["b"] }));
        c.put(KV.placement("web"), placement("web", 4, { "web@1.service": ["a"] }));
        expect(await got).toEqual({
          targets: [
            { name: "web@1.service", hosts: ["a"] },
            { name: "g@1.service", hosts: ["a", "b"] },
          ],
          unplaced: [],
        });
      });
      it("a unit the backend could not place is said, with why", async () => {
        const c = new MemoryConsul();
        c.put(KV.placement("web"), { ...placement("web", 4, {}), unplaced: { "web@1.service": "no machine" } });
        expect((await b.make(c).placed("web", 4, [unit("web", {})], HOSTS, soon())).unplaced).toEqual([
          { unit: "web@1.service", reason: "no machine" },
        ]);
      });
      const waitsAll = may("waits until every non-global unit is placed");
      waitsAll.run(waitsAll.title, async () => {
        const c = new MemoryConsul();
        const got = b.make(c).placed("web", 4, [unit("web", {})], HOSTS, soon());
        c.put(KV.placement("web"), placement("web", 4, {}));
        c.put(KV.placement("web"), placement("web", 4, { "web@1.service": ["c"] }));
        expect((await got).targets).toEqual([{ name: "web@1.service", hosts: ["c"] }]);
      });
      it("the deadline passing is a TimeoutError saying what is missing", async () => {
        await expect(
          b.make(new MemoryConsul()).placed("web", 4, [unit("web", {})], HOSTS, Date.now() + 50),
        ).rejects.toThrow(/has not placed generation 4 of web \(no placements written yet\)/);
      });
    });
  });
}

describe("fleet: no scheduler agent reaches fleetd", () => {
  const noted = (units: Record<string, string[]>): PlacementDoc => ({
    ...placement("web", 4, units),
    note: "fleet at unix:///var/run/fleet.sock: connect ENOENT /var/run/fleet.sock (retrying)",
  });
  it("a global unit (fleet runs it) is unplaced once the error stood 5 s, like any other: the original's configs are all Global=true", async () => {
    const c = new MemoryConsul();
    c.put(KV.placement("web"), noted({}));
    // the deadline's end would be a TimeoutError: an unplaced unit with the note is the 5 s rule
    const got = await BACKENDS.fleet!.make(c).placed("web", 4, [unit("g", {}, true)], HOSTS, Date.now() + 60_000);
    expect(got.unplaced).toEqual([
      {
        unit: "g@1.service",
        reason:
          "no scheduler agent reached fleetd for 5s: fleet at unix:///var/run/fleet.sock: connect ENOENT /var/run/fleet.sock (retrying)",
      },
    ]);
  }, 90_000);
  it("a KV document the scheduler agent could not read is said as such, not as fleetd out of reach", async () => {
    const c = new MemoryConsul();
    c.put(KV.placement("web"), { ...noted({}), note: "houston/fleet/owned: not JSON (nothing done in fleet)" });
    const got = await BACKENDS.fleet!.make(c).placed("web", 4, [unit("g", {}, true)], HOSTS, Date.now() + 60_000);
    expect(got.unplaced).toEqual([
      {
        unit: "g@1.service",
        reason:
          "the scheduler agent has done nothing in fleet for 5s: houston/fleet/owned: not JSON (nothing done in fleet)",
      },
    ]);
  }, 90_000);
  it("without an error a global unit is not waited for; with one, once fleet runs it somewhere", async () => {
    const c = new MemoryConsul();
    c.put(KV.placement("web"), placement("web", 4, {}));
    expect((await BACKENDS.fleet!.make(c).placed("web", 4, [unit("g", {}, true)], HOSTS, soon())).unplaced).toEqual([]);
    c.put(KV.placement("web"), noted({ "g@1.service": ["a"] }));
    expect((await BACKENDS.fleet!.make(c).placed("web", 4, [unit("g", {}, true)], HOSTS, soon())).unplaced).toEqual([]);
  });
});
