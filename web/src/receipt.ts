// Checks a receipt's ed25519 signature in the browser (WebCrypto), over
// the same bytes the node signed: "gradnet-receipt-v1\n" and the body as
// compact JSON in the node's field order.

import type { Check } from "./dom";

const DOMAIN = "gradnet-receipt-v1\n";
const FIELDS = ["version", "kind", "request_hash", "model", "output_hash", "mode", "runtime", "node", "timestamp_ms"];

export function hex(h: string): Uint8Array<ArrayBuffer> {
  const pairs = h.replace(/^0x/, "").match(/../g) ?? [];
  const out = new Uint8Array(new ArrayBuffer(pairs.length));
  pairs.forEach((b, i) => (out[i] = parseInt(b, 16)));
  return out;
}

export function signingBytes(r: Record<string, any>): Uint8Array<ArrayBuffer> {
  const body: Record<string, unknown> = {};
  // the runtime's profile is signed when present (receipts before profiles lack it)
  const rt = (x: any) => (x.profile ? { name: x.name, version: x.version, profile: x.profile } : { name: x.name, version: x.version });
  for (const f of FIELDS) body[f] = f === "runtime" ? rt(r.runtime) : r[f];
  // a paid answer's charge is signed after the rest, when there is one
  if (r.charge) body.charge = { payer: r.charge.payer, payee: r.charge.payee, amount: r.charge.amount, total: r.charge.total };
  return new TextEncoder().encode(DOMAIN + JSON.stringify(body));
}

/** Whether `signature` (hex) is `key`'s (hex) ed25519 signature of `message`. */
export async function ed25519(key: string, signature: string, message: Uint8Array<ArrayBuffer>): Promise<boolean> {
  if (!crypto.subtle) throw new Error("this page is not a secure context (open the console on localhost or https) so the browser cannot check signatures");
  const k = await crypto.subtle.importKey("raw", hex(key), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify("Ed25519", k, hex(signature), message);
}

/** A hash recomputed here against the one a receipt signs. */
export function hashCheck(what: string, how: string, mine: string, signed: string): Check {
  return mine === signed
    ? { ok: true, text: `${what}: recomputed here${how}, matches the receipt` }
    : { ok: false, text: `${what}: recomputed ${mine}, the receipt says ${signed}` };
}

/** Checks `receipt`'s signature and says so in `verdict`. */
export async function showVerdict(verdict: Element, receipt: Record<string, any>): Promise<void> {
  const v = await verifyReceipt(receipt);
  verdict.className = v === "valid" ? "ok" : "bad";
  verdict.textContent = v === "valid" ? `signature valid (node ${String(receipt.node).slice(0, 12)}…)` : v;
}

/** "valid", or why not. */
export async function verifyReceipt(r: Record<string, any>): Promise<string> {
  try {
    return (await ed25519(r.node, r.signature, signingBytes(r))) ? "valid" : "the signature does not match the receipt";
  } catch (e) {
    return `cannot check: ${(e as Error).message}`;
  }
}
