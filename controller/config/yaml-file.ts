/**
 * Reading YAML config files with errors that name the file and line.
 */
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument, isScalar, type Document, type Node } from "yaml";
import { ConfigError } from "../../shared/errors.js";

export interface YamlFile {
  file: string;
  data: unknown;
  /** line of the node at path (1-based), if known */
  lineOf(path: (string | number)[]): number | undefined;
  /** the scalar's text as written (e.g. `0644`), if it is a scalar */
  sourceOf(path: (string | number)[]): string | undefined;
  fail(path: (string | number)[], detail: string): never;
}

export function readYamlFile(file: string): YamlFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === "ENOENT" ? "file not found" : `cannot read (${code ?? String(err)})`);
  }
  return parseYamlText(text, file);
}

export function parseYamlText(text: string, file: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, {
    lineCounter,
    keepSourceTokens: true,
    prettyErrors: false,
    uniqueKeys: true,
  });
  const first = doc.errors[0];
  if (first) {
    const pos = lineCounter.linePos(first.pos[0]);
    throw new ConfigError(file, `invalid YAML: ${first.message.split("\n")[0]}`, pos.line);
  }
  const nodeAt = (path: (string | number)[]): Node | undefined => {
    const n = path.length === 0 ? doc.contents : doc.getIn(path, true);
    return n && typeof n === "object" && "range" in n ? (n as Node) : undefined;
  };
  const lineOf = (path: (string | number)[]): number | undefined => {
    const range = nodeAt(path)?.range;
    return range ? lineCounter.linePos(range[0]).line : undefined;
  };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // e.g. "Excessive alias count": an alias bomb; never a stack trace
    throw new ConfigError(file, `cannot read this YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    file,
    data,
    lineOf,
    sourceOf(path) {
      const n = nodeAt(path);
      return n && isScalar(n) && n.srcToken && "source" in n.srcToken ? String(n.srcToken.source) : undefined;
    },
    fail(path, detail) {
      const where = path.length ? `${path.join(".")}: ` : "";
      throw new ConfigError(file, `${where}${detail}`, lineOf(path));
    },
  };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
