/**
 * What the planner is given, as plain data: config/ reads a config directory into these; the
 * planner (pure) never reads files itself.
 */

/** One file of a deployment's archive (a cloud-init write_files entry, decoded). */
export interface FileEntry {
  path: string;
  content: Buffer;
  mode: number;
  owner: string;
  group: string;
}

/** A unit file's text before rendering, with where it came from (for error messages). */
export interface UnitTemplate {
  text: string;
  source: string;
}
