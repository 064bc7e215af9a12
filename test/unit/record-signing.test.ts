/**
 * A signed record (a history record) binds the cluster it was signed for, as a spec does: a record
 * copied from staging's Consul into prod's under the same prefix and key does not verify for prod's
 * controller (a rollback would otherwise sign staging's units for prod). Without a cluster name the
 * message is the first format's, so records written before stay valid there.
 */
import { createPrivateKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { recordSignatureProblem, signRecord, type RecordSignature } from "../../shared/record-signing.js";
import { SpecSigner, generateSigningKeys } from "../../shared/signing.js";

const pair = generateSigningKeys();
const signerIn = (cluster: string) =>
  new SpecSigner(createPrivateKey(pair.privatePem), { prefix: "houston/", cluster });
const key = "houston/history/web/00000003";
const bytes = Buffer.from('{"units":[]}');

describe("record signatures bind the cluster", () => {
  it.each([
    ["same cluster", "prod", "prod", null],
    ["no cluster, as before", "", "", null],
    ["staging's record in prod", "staging", "prod", 'its signature is for cluster "staging", not "prod"'],
    ["a record of no cluster in prod", "", "prod", 'its signature is for cluster "", not "prod"'],
    ["prod's record where no cluster is named", "prod", "", 'its signature is for cluster "prod", not ""'],
  ])("%s", (_t, signedFor, verifier, want) => {
    const s = signerIn(signedFor);
    expect(recordSignatureProblem(key, bytes, signRecord(s, key, bytes), s.trusted(), verifier)).toBe(want);
  });

  it("a signature whose cluster claim is edited away does not verify", () => {
    const s = signerIn("staging");
    const { cluster: _c, ...stripped }: RecordSignature = signRecord(s, key, bytes);
    expect(recordSignatureProblem(key, bytes, stripped, s.trusted(), "")).toMatch(/does not match it \(tampered\?\)/);
    const relabelled = { ...signRecord(s, key, bytes), cluster: "prod" };
    expect(recordSignatureProblem(key, bytes, relabelled, s.trusted(), "prod")).toMatch(/tampered/);
  });
});
