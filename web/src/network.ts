// Validators and inference nodes: stake, earnings, slashing history,
// modes and enclave status (gradnet_validators / gradnet_inferenceNodes).

import { rpc } from "./rpc";
import { esc, short, table } from "./dom";

const MODES = ["VANILLA", "ZKML", "TEE", "QUORUM"];
const eth = (wei: string) => (Number(BigInt(wei) / 10n ** 12n) / 1e6).toLocaleString(undefined, { maximumFractionDigits: 6 });

export async function network(el: HTMLElement): Promise<void> {
  const [validators, nodes] = await Promise.all([rpc<any[]>("gradnet_validators"), rpc<any[]>("gradnet_inferenceNodes")]);
  el.innerHTML = `<h1>Network</h1>
  <h2>Validators</h2>${table(["public key", "voting power", "fee recipient"], validators.map((v) => [`<span class="mono">${esc(short(v.publicKey, 16))}</span>`, esc(v.power), `<a class="mono" href="#/address/${v.feeRecipient}">${esc(short(v.feeRecipient))}</a>`]), "validators")}
  <h2>Inference nodes</h2>${nodes.length ? table(
    ["operator", "endpoint", "modes", "stake (ETH)", "earned (ETH)", "slashed (ETH)", "faults", "enclave"],
    nodes.map((n) => [
      `<a class="mono" href="#/address/${n.operator}">${esc(short(n.operator))}</a>${n.active ? "" : ' <span class="bad">inactive</span>'}`,
      esc(n.endpoint),
      n.modes.map((m: number) => MODES[m] ?? m).join(", "),
      eth(n.stake),
      eth(n.earnings),
      eth(n.slashed),
      n.faults.length ? `<ul>${n.faults.map((f: any) => `<li title="${esc(f.requestHash)}">${esc(f.reason)}</li>`).join("")}</ul>` : "none",
      n.tee ? `${n.tee.active ? '<span class="ok">active</span>' : '<span class="bad">inactive</span>'}${n.tee.devEnclave ? " (dev enclave)" : ""}` : "–",
    ]),
    "nodes",
  ) : `<p class="muted">no inference nodes registered</p>`}`;
}
