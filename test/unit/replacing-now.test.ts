/** `status`: which rows stop then start hides (the old version where its replacement runs), and never both of a pair. */
import { describe, expect, it } from "vitest";
import { replacingNow } from "../../controller/commands/inspect.js";
import type { UnitSpec } from "../../shared/spec.js";

const unit = (version: string, replaces?: string[]): UnitSpec => ({
  name: `web@${version}.service`,
  stack: "web",
  component: null,
  group: null,
  version,
  role: "service",
  text: "x",
  placements: [{ global: true, metadata: {} }],
  upgrade: "replace",
  ...(replaces ? { replaces } : {}),
});
const on = (names: string[]) => names.map((name) => ({ name, hosts: ["a", "b"] }));

describe("replacingNow", () => {
  it("mid-upgrade: the old version is being replaced where the new one runs", () => {
    expect(replacingNow([unit("1"), unit("2", ["web@1.service"])], on(["web@1.service", "web@2.service"]))).toEqual([
      { unit: "web@1.service", by: "web@2.service", hosts: ["a", "b"] },
    ]);
  });
  it("after the prune: what it replaced is gone, nothing hidden", () => {
    expect(replacingNow([unit("2", ["web@1.service"])], on(["web@2.service"]))).toEqual([]);
  });
  it("a spec naming both ways hides neither (a host running neither then shows as missing)", () => {
    expect(
      replacingNow(
        [unit("2", ["web@1.service"]), unit("1", ["web@2.service"])],
        on(["web@1.service", "web@2.service"]),
      ),
    ).toEqual([]);
  });
});
