// Checks a receipt's ed25519 signature in the browser (WebCrypto), over
// the same bytes the node signed: "gradnet-receipt-v1\n" and the body as
// compact JSON in the node's field order.

const DOMAIN = "gradnet-receipt-v1\n";
const FIELDS = ["version", "kind", "request_hash", "model", "output_hash", "mode", "runtime", "node", "timestamp_ms"];

function hex(h: string): Uint8Array<ArrayBuffer> {
  const pairs = h.match(/../g) ?? [];
  const out = new Uint8Array(new ArrayBuffer(pairs.length));
  pairs.forEach((b, i) => (out[i] = parseInt(b, 16)));
  return out;
}

export function signingBytes(r: Record<string, any>): Uint8Array<ArrayBuffer> {
  const body: Record<string, unknown> = {};
  for (const f of FIELDS) body[f] = f === "runtime" ? { name: r.runtime.name, version: r.runtime.version } : r[f];
  return new TextEncoder().encode(DOMAIN + JSON.stringify(body));
}

/** "valid", or why not. */
export async function verifyReceipt(r: Record<string, any>): Promise<string> {
  if (!crypto.subtle) return "this page is not a secure context (open the console on localhost or https) so the browser cannot check signatures";
  try {
    const key = await crypto.subtle.importKey("raw", hex(r.node), { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify("Ed25519", key, hex(r.signature), signingBytes(r));
    return ok ? "valid" : "the signature does not match the receipt";
  } catch (e) {
    return `cannot check: ${(e as Error).message}`;
  }
}
