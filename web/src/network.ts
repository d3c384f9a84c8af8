// Validators and inference nodes: uptime over the last blocks (precommits
// in the commit certificates, blocks proposed; calls answered of those
// asked), stake, earnings, slashing history, modes, engine and execution
// profile, enclave status, prices off chain and what the escrow paid for
// them (gradnet_validators / gradnet_inferenceNodes / gradnet_uptime, the
// escrow's Redeemed events).

import { keccak256, toBytes } from "viem";
import { rpc } from "./rpc";
import { esc, short, table } from "./dom";

const ESCROW = "0x00000000000000000000000000000000000000fa";
const REDEEMED = keccak256(toBytes("Redeemed(address,address,uint256,uint256)"));
/** Blocks of escrow events the page reads (a node's JSON-RPC serves at most 10,000). */
const PAID_BLOCKS = 9_999n;

/** What the escrow paid each operator over the last blocks, in wei. */
async function paidOffChain(): Promise<Map<string, bigint>> {
  const head = BigInt(await rpc<string>("eth_blockNumber"));
  const from = head > PAID_BLOCKS ? head - PAID_BLOCKS : 0n;
  const logs = await rpc<any[]>("eth_getLogs", [{ address: ESCROW, topics: [REDEEMED], fromBlock: `0x${from.toString(16)}`, toBlock: "latest" }]);
  const paid = new Map<string, bigint>();
  for (const l of logs) {
    const payee = `0x${l.topics[2].slice(26)}`.toLowerCase();
    paid.set(payee, (paid.get(payee) ?? 0n) + BigInt(`0x${l.data.slice(66, 130)}`));
  }
  return paid;
}

/** A node's prices, per call and per million tokens, in ETH. */
function prices(p: any): string {
  if (!p || (p.perCall === "0" && p.perMillionInputTokens === "0" && p.perMillionOutputTokens === "0" && !p.models?.length)) return '<span class="muted">free</span>';
  const m = p.models?.length ? `; ${p.models.length} model price${p.models.length > 1 ? "s" : ""}` : "";
  return `${eth(p.perCall)} a call; ${eth(p.perMillionInputTokens)} / ${eth(p.perMillionOutputTokens)} per M tokens in / out${m}`;
}

const MODES = ["VANILLA", "ZKML", "TEE", "QUORUM"];
const UPTIME_BLOCKS = 100;
const eth = (wei: string) => (Number(BigInt(wei) / 10n ** 12n) / 1e6).toLocaleString(undefined, { maximumFractionDigits: 6 });

export async function network(el: HTMLElement): Promise<void> {
  const [validators, nodes, up, paid] = await Promise.all([rpc<any[]>("gradnet_validators"), rpc<any[]>("gradnet_inferenceNodes"), rpc<any>("gradnet_uptime", [UPTIME_BLOCKS]), paidOffChain()]);
  const signed = new Map(up.validators.map((v: any) => [v.publicKey, v]));
  const served = new Map(up.inferenceNodes.map((n: any) => [n.operator.toLowerCase(), n]));
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}% (${a}/${b})` : "–");
  el.innerHTML = `<h1>Network</h1>
  <p class="muted">Uptime over blocks ${up.from}–${up.to}: a validator's precommits in those blocks' commit certificates (a certificate needs only two thirds), the blocks it proposed; an inference node's answers to the calls it was asked. Paid off chain: what the escrow paid each operator for its vouchers over the last ${PAID_BLOCKS + 1n} blocks.</p>
  <h2>Validators</h2>${table(["public key", "voting power", "signed", "proposed", "fee recipient"], validators.map((v) => {
    const u: any = signed.get(v.publicKey);
    return [`<span class="mono">${esc(short(v.publicKey, 16))}</span>`, esc(v.power), pct(u?.signed ?? 0, up.blocks), String(u?.proposed ?? 0), `<a class="mono" href="#/address/${v.feeRecipient}">${esc(short(v.feeRecipient))}</a>`];
  }), "validators")}
  <h2>Inference nodes</h2>${nodes.length ? table(
    ["operator", "endpoint", "modes", "engine", "stake (ETH)", "earned (ETH)", "slashed (ETH)", "answered", "faults", "enclave", "prices off chain (ETH)", "paid off chain (ETH)"],
    nodes.map((n) => [
      `<a class="mono" href="#/address/${n.operator}">${esc(short(n.operator))}</a>${n.active ? "" : ' <span class="bad">inactive</span>'}`,
      esc(n.endpoint),
      n.modes.map((m: number) => MODES[m] ?? m).join(", "),
      n.engine ? `${esc(n.engine)} <span class="${n.profile === "det-1" ? "ok" : "muted"}" title="${n.profile === "det-1" ? "the same bits on any CPU: sampled for QUORUM" : "not bit-comparable: not sampled for QUORUM"}">${esc(n.profile)}</span>` : '<span class="muted">not declared</span>',
      eth(n.stake),
      eth(n.earnings),
      eth(n.slashed),
      ((u: any) => pct(u?.answered ?? 0, u?.asked ?? 0))(served.get(n.operator.toLowerCase())),
      n.faults.length ? `<ul>${n.faults.map((f: any) => `<li title="${esc(f.requestHash)}">${esc(f.reason)}</li>`).join("")}</ul>` : "none",
      n.tee ? `${n.tee.active ? '<span class="ok">active</span>' : '<span class="bad">inactive</span>'}${n.tee.devEnclave ? " (dev enclave)" : ""}` : "–",
      prices(n.prices),
      eth((paid.get(n.operator.toLowerCase()) ?? 0n).toString()),
    ]),
    "nodes",
  ) : `<p class="muted">no inference nodes registered</p>`}`;
}
