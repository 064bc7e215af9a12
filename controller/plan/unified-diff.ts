/**
 * A unified diff of two texts, line by line (pure): `plan` shows a changed unit this way. Units
 * are short, so a plain longest-common-subsequence table is enough.
 */

type Edit = { op: " " | "-" | "+"; line: string };

function edits(a: string[], b: string[]): Edit[] {
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..]
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: Edit[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ op: " ", line: a[i++]! });
      j++;
    } else if (j < b.length && (i === a.length || lcs[i]![j + 1]! > lcs[i + 1]![j]!))
      out.push({ op: "+", line: b[j++]! });
    else out.push({ op: "-", line: a[i++]! });
  }
  return out;
}

const lines = (text: string): string[] => (text === "" ? [] : text.replace(/\n$/, "").split("\n"));

/** `--- from` / `+++ to` and hunks with `context` lines around each change; "" when the texts are equal. */
export function unifiedDiff(before: string, after: string, from: string, to: string, context = 3): string {
  const es = edits(lines(before), lines(after));
  const changed = es.flatMap((e, k) => (e.op === " " ? [] : [k]));
  if (changed.length === 0) return "";
  // hunks: runs of edits within 2 × context of each other
  const hunks: [number, number][] = [];
  for (const k of changed) {
    const last = hunks.at(-1);
    if (last && k - last[1] <= 2 * context) last[1] = k;
    else hunks.push([k, k]);
  }
  const out = [`--- ${from}`, `+++ ${to}`];
  for (const [first, lastChange] of hunks) {
    const start = Math.max(0, first - context);
    const end = Math.min(es.length - 1, lastChange + context);
    const part = es.slice(start, end + 1);
    const aLines = part.filter((e) => e.op !== "+").length;
    const bLines = part.filter((e) => e.op !== "-").length;
    // 1-based first line of the hunk in each text (the line before it when the hunk has none there)
    const before = es.slice(0, start);
    const aStart = before.filter((e) => e.op !== "+").length + (aLines ? 1 : 0);
    const bStart = before.filter((e) => e.op !== "-").length + (bLines ? 1 : 0);
    out.push(`@@ -${aStart},${aLines} +${bStart},${bLines} @@`);
    for (const e of part) out.push(`${e.op}${e.line}`);
  }
  return out.join("\n");
}
