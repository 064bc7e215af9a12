/**
 * systemd unit files as data: parse into ordered sections/entries, edit, render back.
 * Comments are dropped; backslash line continuations are joined (as systemd does).
 */
import { ConfigError } from "./errors.js";

export interface UnitEntry {
  key: string;
  value: string;
  /** line in the source text (entries added by Houston have none) */
  line?: number;
}
export interface UnitSection {
  name: string;
  entries: UnitEntry[];
}
export interface UnitFile {
  sections: UnitSection[];
}

export function parseUnitFile(text: string, source: string): UnitFile {
  const sections: UnitSection[] = [];
  let current: UnitSection | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = (lines[i] ?? "").trim();
    while (line.endsWith("\\") && i + 1 < lines.length) {
      line = `${line.slice(0, -1)} ${(lines[++i] ?? "").trim()}`;
    }
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      current = { name: header[1] ?? "", entries: [] };
      sections.push(current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0)
      throw new ConfigError(source, `expected 'Key=Value' or '[Section]', got ${JSON.stringify(line)}`, lineNo);
    if (!current) throw new ConfigError(source, "entry before the first [Section] header", lineNo);
    current.entries.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), line: lineNo });
  }
  if (sections.length === 0) throw new ConfigError(source, "no [Section] found: not a unit file");
  return { sections };
}

export function renderUnitFile(unit: UnitFile): string {
  return (
    unit.sections.map((s) => [`[${s.name}]`, ...s.entries.map((e) => `${e.key}=${e.value}`)].join("\n")).join("\n\n") +
    "\n"
  );
}

export function values(unit: UnitFile, section: string, key: string): string[] {
  return unit.sections
    .filter((s) => s.name === section)
    .flatMap((s) => s.entries.filter((e) => e.key === key).map((e) => e.value));
}

export function entries(unit: UnitFile, section: string, key: string): UnitEntry[] {
  return unit.sections.filter((s) => s.name === section).flatMap((s) => s.entries.filter((e) => e.key === key));
}

export function cloneUnit(unit: UnitFile): UnitFile {
  return { sections: unit.sections.map((s) => ({ name: s.name, entries: s.entries.map((e) => ({ ...e })) })) };
}

/** Space-separated words honouring double quotes, as systemd and fleet split list values. */
export function splitWords(value: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) out.push(m[1] ?? m[2] ?? "");
  return out;
}
