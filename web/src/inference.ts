// Decodes calls to the inference precompile (OpenGradient's ABI) and
// describes their sidecar entries: who was asked, who answered, what was
// decided, and how the result is verified.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { esc, short, table } from "./dom";

const enc = new TextEncoder();
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const selector = (sig: string) => "0x" + hex(keccak_256(enc.encode(sig)).slice(0, 4));
const TENSORS = "((string,(int128,int128)[],uint32[])[],(string,string[])[])";
const SELECTORS: Record<string, string> = {
  [selector(`runModelInference((uint8,string,${TENSORS}))`)]: "runModelInference",
  [selector("runLLMCompletion((uint8,string,string,uint32,string[],uint32))")]: "runLLMCompletion",
  [selector("runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],(string,string,string)[],string,uint32,string[],uint32))")]: "runLLMChat",
};

export function modeName(raw: number): string {
  const n = raw >> 4;
  return ({ 0: "VANILLA", 1: "ZKML", 2: "TEE", 3: n ? `QUORUM-${n}` : "QUORUM-3" } as Record<number, string>)[raw & 15] ?? `mode ${raw}`;
}

export function quorumOf(raw: number): number {
  return (raw & 15) === 3 ? raw >> 4 || 3 : 1;
}

export type Decoded = { fn: string; mode: number; model: string; requestHash: string };

/** The inference call in `input` (calldata of a call to 0x…F4, or forwarded to it unchanged). */
export function decode(input: string): Decoded | null {
  const fn = SELECTORS[input.slice(0, 10)];
  if (!fn || input.length < 10 + 64 * 4) return null;
  const word = (i: number) => input.slice(10 + i * 64, 10 + (i + 1) * 64);
  const tuple = parseInt(word(0), 16) / 32; // offset of the request, in words
  const mode = parseInt(word(tuple), 16);
  const cidAt = tuple + parseInt(word(tuple + 1), 16) / 32;
  const len = parseInt(word(cidAt), 16);
  const bytes = input.slice(10 + (cidAt + 1) * 64, 10 + (cidAt + 1) * 64 + len * 2);
  const model = new TextDecoder().decode(Uint8Array.from(bytes.match(/../g) ?? [], (b) => parseInt(b, 16)));
  const raw = Uint8Array.from(input.slice(2).match(/../g) ?? [], (b) => parseInt(b, 16));
  return { fn, mode, model, requestHash: "0x" + hex(keccak_256(raw)) };
}

export function describe(d: Decoded, entry: any | undefined, succeeded: boolean): string {
  const verification = (d.mode & 15) === 1
    ? succeeded ? "ZKML: the node's Groth16 proof was verified by every validator" : "ZKML: no verified proof"
    : (d.mode & 15) === 2
      ? "TEE: served by an active, attested enclave"
      : (d.mode & 15) === 3
        ? `QUORUM: ${entry?.decision?.agreed?.length ?? 0} of ${quorumOf(d.mode)} nodes agreed`
        : "VANILLA: one staked node's signed result";
  const rows = [
    ["function", esc(d.fn)],
    ["mode", esc(modeName(d.mode))],
    ["model", `<a class="mono" href="#/model/${esc(d.model)}">${esc(short(d.model, 14))}</a>`],
    ["request hash", `<span class="mono">${esc(short(d.requestHash, 14))}</span>`],
    ["verification", esc(verification)],
  ];
  if (entry) {
    rows.push(["nodes asked", entry.asked.map((a: string) => `<span class="mono">${esc(short(a))}</span>`).join(", ")]);
    rows.push(["answers", entry.answers.map((a: any) => `<span class="mono">${esc(short(a.node))}</span> → ${esc(entry.outcomes[a.outcome]?.kind ?? "?")}`).join("<br>")]);
    const dec = entry.decision;
    rows.push(["decision", dec.unserved ? `<span class="bad">unserved: ${esc(dec.unserved)}</span>` : `agreed: ${dec.agreed.length}${dec.dissenting.length ? `, <span class="bad">outvoted and slashed: ${dec.dissenting.length}</span>` : ""}${dec.missed.length ? `, missed: ${dec.missed.length}` : ""}`]);
  } else {
    rows.push(["sidecar", `<span class="muted">no result in the block's sidecar (the call did not reach a node)</span>`]);
  }
  return `<h2>Inference call</h2>${table(["field", "value"], rows, "kv inference")}`;
}
