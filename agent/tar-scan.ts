/**
 * What a tar reader would hide: node-tar (like most readers) ends a header's name fields and a
 * PAX record's value at the first NUL, so `etc/cron.d/job\0.txt` is read as `etc/cron.d/job` while
 * the controller's plan and the archive's file list say otherwise. This walks the raw headers
 * before the archive is parsed and names every field whose text goes on past a NUL, and every
 * PAX or GNU long name with a control character. Anything it cannot follow is left to the parser
 * (strict), which rejects a malformed archive itself.
 */

const BLOCK = 512;
const CONTROL = /[\u0000-\u001f\u007f]/;
/** ustar header fields that hold names: [what, offset, length] */
const NAME_FIELDS: [string, number, number][] = [
  ["name", 0, 100],
  ["link target", 157, 100],
  ["user name", 265, 32],
  ["group name", 297, 32],
];
const PREFIX: [string, number, number] = ["name prefix", 345, 155];
/** PAX keys that carry names */
const PAX_NAMES = new Set(["path", "linkpath", "uname", "gname"]);

/** Problems, one per hidden name, in the words of the agent's other path checks. */
export function hiddenNameProblems(bytes: Buffer): string[] {
  const problems: string[] = [];
  const refuse = (text: string, what: string): void => {
    problems.push(`${JSON.stringify(text)} (${what}): control characters in a path are not accepted`);
  };
  for (let off = 0; off + BLOCK <= bytes.length;) {
    const h = bytes.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    if ((h[124] ?? 0) & 0x80) break; // a base-256 size: far over any archive limit; the parser decides
    const size = parseInt(
      h
        .subarray(124, 136)
        .toString("latin1")
        .replace(/[\0 ]+$/, ""),
      8,
    );
    if (!Number.isSafeInteger(size) || size < 0) break;
    const ustar = h.subarray(257, 263).toString("latin1") === "ustar\0";
    for (const [what, at, len] of ustar ? [...NAME_FIELDS, PREFIX] : NAME_FIELDS) {
      const field = h.subarray(at, at + len);
      const nul = field.indexOf(0);
      if (nul !== -1 && field.subarray(nul).some((b) => b !== 0)) refuse(trimmed(field), `header ${what}`);
    }
    const body = bytes.subarray(off + BLOCK, off + BLOCK + size);
    const type = String.fromCharCode(h[156] ?? 0);
    if (type === "x" || type === "g") {
      for (const [key, value] of paxRecords(body))
        if (PAX_NAMES.has(key) && CONTROL.test(value)) refuse(value, `PAX ${key}`);
    } else if (type === "L" || type === "K") {
      const text = trimmed(body);
      if (CONTROL.test(text)) refuse(text, "GNU long name");
    }
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return problems;
}

/** the field's text up to its last non-NUL byte (NULs inside kept, to be shown) */
function trimmed(field: Buffer): string {
  let end = field.length;
  while (end > 0 && field[end - 1] === 0) end--;
  return field.subarray(0, end).toString("utf8");
}

/** PAX records: "LEN key=value\n", LEN counting the whole record */
function paxRecords(body: Buffer): [string, string][] {
  const out: [string, string][] = [];
  for (let pos = 0; pos < body.length;) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number(body.subarray(pos, space).toString("latin1"));
    if (!Number.isSafeInteger(len) || len <= space - pos || pos + len > body.length) break;
    const record = body.subarray(space + 1, pos + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) out.push([record.slice(0, eq), record.slice(eq + 1)]);
    pos += len;
  }
  return out;
}
