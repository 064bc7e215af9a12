/**
 * The store of each stack's adopted files: stacks/<stack>/adopted, the absolute paths the original
 * Houston's archive of that stack wrote on the hosts, recorded by `houston adopt` (the controller):
 * a deploy of that stack may replace exactly these files, which Houston did not create (and removing
 * its archive before a deploy was confirmed puts back what the original wrote: agent/archive.ts).
 * Under stacks/, which only the controller may write (agents read it with their watch of specs):
 * never in fleet/owned, which every agent token may write, so a compromised host cannot make the
 * other hosts overwrite files that are not Houston's. Signed (a record signature binding this key
 * and the cluster, shared/record-signing.ts) when signing is on; an agent with --trust takes over
 * files only from a record that verifies against a key it trusts. Deleted once a deploy of the
 * stack is confirmed (the hosts have claimed the files).
 */
import type { KeyObject } from "node:crypto";
import { z } from "zod";
import type { Consul } from "../consul.js";
import { errorText } from "../errors.js";
import type { KvLayout } from "../kv-layout.js";
import { RecordSignatureSchema, recordSignatureProblem, signRecord } from "../record-signing.js";
import type { SpecSigner } from "../signing.js";
import { decodeEntry, encodeDocument } from "./document.js";

export const AdoptedFilesSchema = z.object({
  schema: z.literal(1),
  stack: z.string(),
  paths: z.array(z.string().regex(/^\//, "not an absolute path")),
  signature: RecordSignatureSchema.nullable(),
});
export type AdoptedFiles = z.infer<typeof AdoptedFilesSchema>;

/** What is signed: the record without its signature, in this one order. */
const signedBytes = (stack: string, paths: string[]): Buffer =>
  Buffer.from(JSON.stringify({ schema: 1, stack, paths }));

/** Records `paths` (sorted, once each) as `stack`'s adopted files, signed with `signer` when there is one. */
export async function putAdoptedFiles(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  paths: string[],
  signer: SpecSigner | null,
): Promise<void> {
  const key = kv.adopted(stack);
  const sorted = [...new Set(paths)].sort();
  const signature = signer ? signRecord(signer, key, signedBytes(stack, sorted)) : null;
  const doc: AdoptedFiles = { schema: 1, stack, paths: sorted, signature };
  await consul.kvPut(key, encodeDocument(AdoptedFilesSchema.parse(doc), true));
}

export async function deleteAdoptedFiles(consul: Consul, kv: KvLayout, stack: string): Promise<void> {
  await consul.kvDelete(kv.adopted(stack));
}

/**
 * The files a deploy of `stack` may take over on this host, or nothing and why not: the record
 * must be readable and name its key's stack; with trusted keys (`trusted` a Map; an Error: they
 * cannot be read, nothing is taken over) its signature must verify for this key and `cluster`.
 * Without trusted keys the record is taken as the controller wrote it (only it may write stacks/).
 */
export async function readAdoptedFiles(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  trusted: Map<string, KeyObject> | Error | null,
  cluster: string,
): Promise<{ paths: ReadonlySet<string>; problem: string | null }> {
  const none = (problem: string | null) => ({ paths: new Set<string>(), problem });
  const key = kv.adopted(stack);
  const entry = await consul.kvGet(key).catch((err: unknown) => new Error(errorText(err)));
  if (entry instanceof Error) return none(`${key} not read (${entry.message})`);
  if (!entry) return none(null);
  const d = decodeEntry(AdoptedFilesSchema, entry);
  if (!d.ok) return none(d.error);
  if (d.value.stack !== stack) return none(`${key} names stack ${d.value.stack}`);
  if (trusted instanceof Error) return none(`${key}: the trusted keys cannot be read (${trusted.message})`);
  if (trusted !== null) {
    const bytes = signedBytes(stack, d.value.paths);
    const problem = recordSignatureProblem(key, bytes, d.value.signature, trusted, cluster);
    if (problem) return none(`${key}: ${problem.replace("this controller's key", "a key this agent trusts")}`);
  }
  return { paths: new Set(d.value.paths), problem: null };
}
