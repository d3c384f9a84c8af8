// One inference call through the chain, shown as it goes: a dry run
// (eth_call: a model or input the nodes would refuse fails here, with its
// reason, before anything is paid), the transaction to the demo contract,
// its final block, the result it logged, the decoded call with its sidecar
// entry and a button that checks it in this browser.

import type { Hex } from "viem";
import { rpc } from "./rpc";
import { esc, errorBox } from "./dom";
import { DEMO_CONTRACT, loggedResult } from "./onchain";
import { accountOf, receiptOf, send } from "./wallet";
import { inferenceSection, verifyButton } from "./explorer";

/** Runs `data`; `result` renders the logged return data. */
export async function callOnChain(out: HTMLElement, key: string, data: Hex, result: (logged: Hex) => string): Promise<void> {
  try {
    // from the sending account when known, so that its balance is checked too
    const from = accountOf(key);
    await rpc("eth_call", [{ ...(from ? { from } : {}), to: DEMO_CONTRACT, data, gas: "0x4c4b40" }, "latest"]);
    out.innerHTML = "sending the transaction…";
    const hash = await send(key, DEMO_CONTRACT, data);
    const link = `<a class="mono" href="#/tx/${esc(hash)}">${esc(hash)}</a>`;
    out.innerHTML = `waiting for ${link} to be in a final block…`;
    const r = await receiptOf(hash);
    const t = await rpc<any>("eth_getTransactionByHash", [hash]);
    const logged = loggedResult(r);
    const block = parseInt(r.blockNumber, 16);
    out.innerHTML = `${r.status === "0x1" && logged ? result(logged) : errorBox("the call reverted: see the decision below")}
      <h2>Transaction</h2><p id="chain-tx">${r.status === "0x1" ? '<span class="ok">success</span>' : '<span class="bad">reverted</span>'}: ${link} in block <a href="#/block/${block}">${block}</a>, gas ${parseInt(r.gasUsed, 16).toLocaleString()}</p>
      ${await inferenceSection(t, r)}`;
    verifyButton(out, t, r);
  } catch (e) {
    out.innerHTML = errorBox(e);
  }
}
