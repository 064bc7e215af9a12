import { describe, expect, it } from "vitest";
import { unifiedDiff } from "../../controller/plan/unified-diff.js";

const text = (...l: string[]) => `${l.join("\n")}\n`;

describe("unifiedDiff", () => {
  const cases: [string, string, string, string][] = [
    ["equal texts: nothing", text("a", "b"), text("a", "b"), ""],
    ["one line changed", text("a", "b", "c"), text("a", "X", "c"), "@@ -1,3 +1,3 @@\n a\n-b\n+X\n c"],
    ["a line added at the end", text("a"), text("a", "b"), "@@ -1,1 +1,2 @@\n a\n+b"],
    ["everything new", "", text("a"), "@@ -0,0 +1,1 @@\n+a"],
    ["everything gone", text("a"), "", "@@ -1,1 +0,0 @@\n-a"],
    [
      "context of 3 lines, far changes in separate hunks",
      text("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"),
      text("X", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "Y"),
      "@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+Y",
    ],
  ];
  for (const [title, a, b, hunks] of cases)
    it(title, () => expect(unifiedDiff(a, b, "old", "new")).toBe(hunks ? `--- old\n+++ new\n${hunks}` : ""));
});
