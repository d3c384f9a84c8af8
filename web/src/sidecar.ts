// Checks an inference transaction's result in the browser, from the
// block's sidecar: the request hash recomputed from the calldata, every
// answering node's ed25519 signature over its outcome (with the key the
// registry holds for it), that the result the contract got is the outcome
// the agreeing nodes signed, the quorum, the proof or the enclave.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { decode, quorumOf } from "./inference";
import { ed25519, hex } from "./receipt";
import { rpc } from "./rpc";
import { short, type Check } from "./dom";
import { loggedResult, markDevEnclave } from "./onchain";
import type { Hex } from "viem";

const DOMAIN = new TextEncoder().encode("gradnet-inference-result-v1");

/** What a node signs: the domain, the chain id, the request hash and keccak(outcome). */
export function signingBytes(chainId: number, requestHash: string, outcome: string): Uint8Array<ArrayBuffer> {
  const m = new Uint8Array(new ArrayBuffer(DOMAIN.length + 8 + 32 + 32));
  m.set(DOMAIN);
  new DataView(m.buffer).setBigUint64(DOMAIN.length, BigInt(chainId));
  m.set(hex(requestHash), DOMAIN.length + 8);
  m.set(keccak_256(hex(outcome)), DOMAIN.length + 40);
  return m;
}

export async function checkInference(tx: any, receipt: any): Promise<Check[]> {
  const call = decode(tx.input);
  if (!call) return [{ ok: false, text: "not an inference call" }];
  const quorum = quorumOf(call.mode);
  const [sc, nodes] = await Promise.all([rpc<any>("gradnet_sidecar", [receipt.blockNumber, quorum]), rpc<any[]>("gradnet_inferenceNodes")]);
  const entry = sc?.calls?.find((c: any) => c.requestHash === call.requestHash);
  const block = parseInt(receipt.blockNumber, 16);
  if (!entry) return [{ ok: false, text: `request hash ${short(call.requestHash, 14)} (keccak of the calldata, recomputed here) is not in block ${block}'s sidecar` }];
  const checks: Check[] = [{ ok: true, text: `request hash: keccak of the calldata, recomputed here, is in block ${block}'s sidecar` }];
  const byOperator = new Map(nodes.map((n) => [n.operator.toLowerCase(), n]));
  const valid = new Set<string>();
  for (const a of entry.answers) {
    const node = byOperator.get(a.node.toLowerCase());
    const outcome = entry.outcomes[a.outcome];
    const ok = Boolean(node && outcome) && (await ed25519(node.signingKey, a.signature, signingBytes(sc.chainId, call.requestHash, outcome.data)));
    if (ok) valid.add(a.node.toLowerCase());
    checks.push({ ok, text: `node ${short(a.node)}: ${ok ? "ed25519 signature over its " + outcome.kind + " valid (the registry's key)" : "signature does not verify"}` });
  }
  const dec = entry.decision;
  if (dec.unserved) return [...checks, { ok: false, text: `unserved: ${dec.unserved}` }];
  const agreed = dec.agreed.filter((a: string) => valid.has(a.toLowerCase()));
  checks.push({ ok: agreed.length >= quorum, text: `${agreed.length} of ${quorum} required signed the same outcome${dec.dissenting.length ? `; ${dec.dissenting.length} outvoted and slashed` : ""}` });
  const answer = entry.answers.find((a: any) => a.node.toLowerCase() === agreed[0]?.toLowerCase());
  const outcome = answer && entry.outcomes[answer.outcome];
  const logged = loggedResult(receipt);
  const tee = (call.mode & 15) === 2 ? byOperator.get(String(agreed[0]).toLowerCase())?.tee : undefined;
  if (outcome?.kind === "result" && logged) {
    let signed = ("0x" + outcome.data.slice(4)) as Hex;
    if (tee?.devEnclave && call.fn === "runModelInference") signed = markDevEnclave(signed);
    const same = signed.toLowerCase() === logged.toLowerCase();
    checks.push({
      ok: same,
      text: same
        ? `the result the contract received is the signed outcome${tee?.devEnclave && call.fn === "runModelInference" ? " (marked a dev enclave's by the validators)" : ""}`
        : "the result the contract received differs from the signed outcome",
    });
  }
  if ((call.mode & 15) === 1)
    checks.push({ ok: outcome?.kind === "zk-proof" && receipt.status === "0x1", text: outcome?.kind === "zk-proof" ? `Groth16 proof (${outcome.bytes - 1} B with the output) checked against the registered key by every validator: ${receipt.status === "0x1" ? "accepted" : "refused"}` : "no proof in the sidecar" });
  if ((call.mode & 15) === 2)
    checks.push({ ok: Boolean(tee?.active), text: tee ? `enclave ${short(tee.teeId)}: attested (measurement ${short(tee.pcrHash)}), ${tee.active ? "active" : "inactive"}${tee.devEnclave ? ", a dev enclave" : ""}` : "the node is not a registered enclave" });
  return checks;
}
