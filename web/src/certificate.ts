// Checks a gateway's certificate in the browser, as `gradnet receipt
// verify` does: every receipt's ed25519 signature, one request of one
// model, one answer per node asked, and (QUORUM) a majority of the quorum
// on one output hash, which must be the hash of the outputs in hand.

import type { Check } from "./dom";
import { verifyReceipt } from "./receipt";

export async function certificateChecks(cert: any, outputHash: string): Promise<Check[]> {
  const checks: Check[] = [];
  const answers: any[] = cert?.answers ?? [];
  if (!answers.length) return [{ ok: false, text: "the certificate holds no answer" }];
  for (const [i, a] of answers.entries()) {
    const v = await verifyReceipt(a.receipt);
    checks.push({ ok: v === "valid", text: `answer ${i} (${a.operator}): ${v === "valid" ? "signature valid" : v}` });
    if (!(cert.asked ?? []).includes(a.operator)) checks.push({ ok: false, text: `answer ${i} is from a node that was not asked` });
  }
  const first = answers[0].receipt;
  const same = answers.every((a) => a.receipt.request_hash === first.request_hash && a.receipt.model === first.model);
  checks.push({ ok: same, text: same ? "every answer is to the same request of the same model" : "the answers are to different requests" });
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(a.receipt.output_hash, (counts.get(a.receipt.output_hash) ?? 0) + 1);
  const [best, n] = [...counts.entries()].sort((x, y) => y[1] - x[1])[0];
  if (cert.mode === "QUORUM") {
    const need = Math.floor(cert.quorum / 2) + 1;
    checks.push({ ok: n >= need, text: `${n} of ${answers.length} answers agree (a quorum of ${cert.quorum} needs ${need}); sampled at block ${cert.seed.block}` });
    for (const a of answers.filter((a) => a.receipt.output_hash !== best)) {
      checks.push({ ok: true, text: `dissent: ${a.operator} signed another output (fault evidence, reported on chain)` });
    }
  } else {
    checks.push({ ok: !!cert.enclave, text: cert.enclave ? `enclave registration ${cert.enclave} (TEE registry 0x…F8)` : "no enclave named" });
  }
  checks.push({ ok: best === outputHash, text: best === outputHash ? "the outputs in hand are the certified ones" : `the outputs hash to ${outputHash}, the certificate's answer is ${best}` });
  return checks;
}
