/** Builds raw tar archives for tests, including malicious ones a Houston controller would never make. */
import { Header } from "tar";

export interface RawEntry {
  path: string;
  type?: "File" | "SymbolicLink" | "Link" | "CharacterDevice" | "Directory";
  data?: string;
  linkpath?: string;
  mode?: number;
  uname?: string;
}

export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? "");
    const size = e.type && e.type !== "File" ? 0 : data.length;
    const block = Buffer.alloc(512);
    new Header({
      path: e.path,
      type: e.type ?? "File",
      size,
      mode: e.mode ?? 0o644,
      uid: 0,
      gid: 0,
      uname: e.uname ?? "root",
      gname: "root",
      mtime: new Date(0),
      linkpath: e.linkpath,
    }).encode(block, 0);
    parts.push(block);
    if (size) parts.push(data, Buffer.alloc((512 - (size % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
