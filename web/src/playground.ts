// Playground: run an ONNX model on a JSON input, either on this node
// (VANILLA, its signed receipt), off chain through the network's gateway
// (QUORUM, TEE: a certificate checked here), or through the chain in any mode (a
// transaction to the demo contract; the block's sidecar holds the nodes'
// signed results), and check the result in the browser. Errors show the
// API's own message.

import type { Hex } from "viem";
import { api } from "./rpc";
import { esc, errorBox, renderChecks } from "./dom";
import { hashCheck, showVerdict } from "./receipt";
import { outputHash, requestHash } from "./hashes";
import { MODES, decodeOutput, inferenceCall } from "./onchain";
import { accountField, keepKey, toggleAccount } from "./wallet";
import { chargeNote } from "./pay";
import { callOnChain } from "./chaincall";
import { certificateChecks } from "./certificate";

export function playground(el: HTMLElement, model = ""): void {
  el.innerHTML = `<h1>Playground</h1>
  <form id="run">
    <label>Model (content id or repo@version/file) <input name="model" value="${esc(model)}" required /></label>
    <label>Inputs (JSON) <textarea name="inputs" rows="6">{"x": [[0.5, -1.0, 2.5, 3.0]]}</textarea></label>
    <label>Mode <select name="mode">
      <option value="node">VANILLA on this node: its signed receipt</option>
      <option value="gw-QUORUM">QUORUM off chain (gateway): three sampled nodes agree, a certificate in milliseconds</option>
      <option value="gw-TEE">TEE off chain (gateway): an attested enclave, a certificate naming it</option>
      <option value="VANILLA">VANILLA on chain: one staked node, result in a block</option>
      <option value="QUORUM">QUORUM on chain: three nodes must agree</option>
      <option value="ZKML">ZKML on chain: a zero-knowledge proof, checked by every validator</option>
      <option value="TEE">TEE on chain: an attested enclave</option>
    </select></label>
    ${accountField()}
    <button>Run</button>
  </form>
  <div id="result"></div>
  <h2>Verify a receipt</h2>
  <p class="muted">The node's ed25519 signature, checked by this browser over the bytes the node signed.</p>
  <textarea id="receipt-input" rows="8" placeholder="paste a receipt (JSON)"></textarea>
  <button id="verify">Verify</button> <span id="verdict"></span>`;
  el.querySelector<HTMLButtonElement>("#verify")!.onclick = async () => {
    const verdict = el.querySelector("#verdict")!;
    let receipt: any;
    try {
      receipt = JSON.parse(el.querySelector<HTMLTextAreaElement>("#receipt-input")!.value);
    } catch (e) {
      verdict.className = "bad";
      verdict.textContent = `not valid JSON: ${(e as Error).message}`;
      return;
    }
    await showVerdict(verdict, receipt);
  };
  toggleAccount(el, el.querySelector<HTMLSelectElement>("select[name=mode]")!);
  el.querySelector<HTMLFormElement>("#run")!.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target as HTMLFormElement);
    const out = el.querySelector<HTMLElement>("#result")!;
    let inputs: unknown;
    try {
      inputs = JSON.parse(String(f.get("inputs")));
    } catch (e) {
      out.innerHTML = errorBox(`the inputs are not valid JSON: ${(e as Error).message}`);
      return;
    }
    out.innerHTML = "running…";
    const mode = String(f.get("mode"));
    if (mode.startsWith("gw-")) {
      try {
        if (String(f.get("key") ?? "").trim()) keepKey(String(f.get("key")));
        const r = await api<any>("/gateway/v1/infer", { model: f.get("model"), inputs, mode: mode.slice(3) });
        out.innerHTML = `${outputsHtml(r.outputs)}<h2>Certificate</h2><pre id="certificate">${esc(JSON.stringify(r.certificate, null, 1))}</pre>`;
        const checks = await certificateChecks(r.certificate, outputHash(r.outputs, r.output_types));
        out.insertAdjacentHTML("beforeend", renderChecks(checks, "certificate-checks"));
      } catch (e) {
        out.innerHTML = errorBox(e);
      }
      return;
    }
    if (mode !== "node") {
      let data: Hex;
      try {
        data = inferenceCall(MODES[mode], String(f.get("model")), inputs as Record<string, unknown>);
      } catch (e) {
        out.innerHTML = errorBox(e);
        return;
      }
      return callOnChain(out, String(f.get("key") ?? ""), data, (logged) => outputsHtml(decodeOutput(logged)));
    }
    try {
      // on a node that charges, the account pays with a voucher
      if (String(f.get("key") ?? "").trim()) keepKey(String(f.get("key")));
      const r = await api<any>("/v1/infer", { model: f.get("model"), inputs });
      out.innerHTML = `${outputsHtml(r.outputs)}${chargeNote(r.receipt)}<h2>Receipt</h2><pre id="receipt">${esc(JSON.stringify(r.receipt, null, 1))}</pre>`;
      el.querySelector<HTMLTextAreaElement>("#receipt-input")!.value = JSON.stringify(r.receipt, null, 1);
      // the hashes the receipt signs, recomputed here from what was sent and received
      const sig = (await api<any>(`/api/v0/signature/${r.model}`)).signature ?? {};
      const dtypes = Object.fromEntries((sig.inputs ?? []).map((t: any) => [t.name, t.dtype]));
      const checks = [
        hashCheck("request hash", "", requestHash(r.model, 0, inputs as Record<string, unknown>, dtypes), r.receipt.request_hash),
        hashCheck("output hash", "", outputHash(r.outputs, r.output_types), r.receipt.output_hash),
      ];
      out.insertAdjacentHTML("beforeend", renderChecks(checks, "hash-checks"));
    } catch (e) {
      out.innerHTML = errorBox(e);
    }
  };
}

const outputsHtml = (outputs: unknown): string => `<h2>Outputs</h2><pre id="outputs">${esc(JSON.stringify(outputs, null, 1))}</pre>`;
