/**
 * fleet/owned's transitions (shared/stores/fleet-owned.ts): what Houston owns in fleet after
 * `houston adopt`, before fleet creates units, after it destroyed them, and once a deploy of an
 * adopted stack is confirmed.
 */
import { describe, expect, it } from "vitest";
import {
  NOTHING_OWNED,
  adoptUnits,
  forgetDestroyed,
  recordCreating,
  releaseAdopted,
  type FleetOwned,
} from "../../shared/stores/fleet-owned.js";

const owned: FleetOwned = {
  schema: 1,
  units: { "web-app@2.service": "web" },
  adopted: { "web@1.service": "web", "db@1.service": "db" },
};

describe("fleet/owned transitions", () => {
  const cases: [string, () => FleetOwned | null, FleetOwned | null][] = [
    [
      "adopt: the original's units become adopted, what is owned stays",
      () => adoptUnits(NOTHING_OWNED, [{ name: "web@1.service", stack: "web" }]),
      { schema: 1, units: {}, adopted: { "web@1.service": "web" } },
    ],
    [
      "before create: recorded as Houston's; a unit created under an adopted name stays adopted (a failed deploy keeps it)",
      () => recordCreating(owned, [{ name: "web@1.service", stack: "web" }]),
      {
        schema: 1,
        units: { "web-app@2.service": "web", "web@1.service": "web" },
        adopted: owned.adopted,
      },
    ],
    [
      "after destroy: forgotten; adopted units untouched",
      () => forgetDestroyed(owned, ["web-app@2.service", "never-ours.service"]),
      { schema: 1, units: {}, adopted: owned.adopted },
    ],
    [
      "after a confirmed deploy: the stack's adopted units become owned (the mirror then destroys them)",
      () => releaseAdopted(owned, "web")?.next ?? null,
      {
        schema: 1,
        units: { "web-app@2.service": "web", "web@1.service": "web" },
        adopted: { "db@1.service": "db" },
      },
    ],
    [
      "after a confirmed deploy: the stack's adopted files are forgotten, another stack's stay",
      () =>
        releaseAdopted({ ...owned, adoptedFiles: { web: ["/etc/web.env"], db: ["/etc/db.env"] } }, "web")?.next ?? null,
      {
        schema: 1,
        units: { "web-app@2.service": "web", "web@1.service": "web" },
        adopted: { "db@1.service": "db" },
        adoptedFiles: { db: ["/etc/db.env"] },
      },
    ],
    [
      "only files adopted: released too, and the empty record dropped",
      () => releaseAdopted({ schema: 1, units: {}, adoptedFiles: { web: ["/etc/web.env"] } }, "web")?.next ?? null,
      { schema: 1, units: {}, adopted: {} },
    ],
    ["a stack with nothing adopted: nothing to write", () => releaseAdopted(owned, "api")?.next ?? null, null],
  ];
  for (const [title, run, want] of cases) it(title, () => expect(run()).toEqual(want));

  it("release names the units it released and leaves its input alone", () => {
    const before = structuredClone(owned);
    expect(releaseAdopted(owned, "db")?.released).toEqual(["db@1.service"]);
    expect(owned).toEqual(before);
  });
});
