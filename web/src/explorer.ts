// Explorer: latest blocks and transactions (live), a block, a transaction
// with its inference call and receipt, an address.

import { rpc, hexToNum } from "./rpc";
import { esc, short, ago, table, errorBox, renderChecks } from "./dom";
import { decode, describe, quorumOf } from "./inference";
import { checkInference } from "./sidecar";
import { registrySection } from "./names";

const PRECOMPILES: Record<string, string> = {
  "0x00000000000000000000000000000000000000f4": "inference precompile",
  "0x00000000000000000000000000000000000000f5": "inference registry",
  "0x00000000000000000000000000000000000000f6": "workflow scheduler",
  "0x00000000000000000000000000000000000000f7": "ZK verifier",
  "0x00000000000000000000000000000000000000f8": "TEE registry",
  "0x00000000000000000000000000000000000000f9": "model registry",
  "0x0000000000000000000000000000000000000de0": "demo contract",
};

const blockLink = (n: number) => `<a href="#/block/${n}">${n}</a>`;
const txLink = (h: string) => `<a class="mono" href="#/tx/${h}">${esc(short(h))}</a>`;
const addrLink = (a: string | null) =>
  a ? `<a class="mono" href="#/address/${a}">${esc(PRECOMPILES[a.toLowerCase()] ?? short(a))}</a>` : "contract creation";

export async function latest(el: HTMLElement, isCurrent: () => boolean): Promise<void> {
  el.innerHTML = `<h1>Explorer</h1><section class="cols"><div><h2>Latest blocks</h2><div id="blocks">loading…</div></div><div><h2>Latest transactions</h2><div id="txs">loading…</div></div></section>`;
  // every block since the last refresh is read (up to a window), so a
  // transaction shows up however fast blocks come
  const WINDOW = 15;
  let shown = -1;
  let blocks: any[] = [];
  let txs: any[] = [];
  while (isCurrent()) {
    try {
      const head = hexToNum(await rpc<string>("eth_blockNumber"));
      if (head !== shown) {
        const from = Math.max(shown + 1, head - 4 * WINDOW + 1, 0);
        const fresh = (
          await Promise.all(Array.from({ length: head - from + 1 }, (_, i) => rpc<any>("eth_getBlockByNumber", [`0x${(head - i).toString(16)}`, true])))
        ).filter(Boolean);
        shown = head;
        blocks = [...fresh, ...blocks].slice(0, WINDOW);
        txs = [...fresh.flatMap((b) => b.transactions.map((t: any) => ({ ...t, block: hexToNum(b.number) }))), ...txs].slice(0, WINDOW);
        el.querySelector("#blocks")!.innerHTML = table(
          ["block", "age", "txs", "gas used", "proposer"],
          blocks.map((b) => [
            blockLink(hexToNum(b.number)),
            ago(hexToNum(b.timestamp)),
            String(b.transactions.length),
            hexToNum(b.gasUsed).toLocaleString(),
            `<span class="mono">${esc(short(b.miner))}</span>`,
          ]),
          "blocks",
        );
        el.querySelector("#txs")!.innerHTML = txs.length
          ? table(["tx", "block", "from", "to"], txs.map((t) => [txLink(t.hash), blockLink(t.block), addrLink(t.from), addrLink(t.to)]), "txs")
          : `<p class="muted">no transactions in the latest ${4 * WINDOW} blocks</p>`;
      }
    } catch (e) {
      el.querySelector("#blocks")!.innerHTML = errorBox(e);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function block(el: HTMLElement, id: string): Promise<void> {
  const b = id.startsWith("0x") && id.length === 66
    ? await rpc<any>("eth_getBlockByHash", [id, true])
    : await rpc<any>("eth_getBlockByNumber", [`0x${Number(id).toString(16)}`, true]);
  if (!b) throw new Error(`no block ${id}`);
  const n = hexToNum(b.number);
  el.innerHTML = `<h1>Block ${n}</h1>${table(["field", "value"], [
    ["hash", `<span class="mono">${esc(b.hash)}</span>`],
    ["parent", n > 0 ? `<a href="#/block/${n - 1}">${esc(b.parentHash)}</a>` : esc(b.parentHash)],
    ["time", `${new Date(hexToNum(b.timestamp) * 1000).toISOString()} (${ago(hexToNum(b.timestamp))})`],
    ["proposer", `<span class="mono">${esc(b.miner)}</span>`],
    ["gas used / limit", `${hexToNum(b.gasUsed).toLocaleString()} / ${hexToNum(b.gasLimit).toLocaleString()}`],
    ["state root", `<span class="mono">${esc(b.stateRoot)}</span>`],
    ["transactions", String(b.transactions.length)],
  ], "kv")}${await sidecarSummary(n)}<h2>Transactions</h2>${b.transactions.length ? table(["tx", "from", "to", "gas"], b.transactions.map((t: any) => [txLink(t.hash), addrLink(t.from), addrLink(t.to), hexToNum(t.gas).toLocaleString()])) : `<p class="muted">none</p>`}`;
}

export async function tx(el: HTMLElement, hash: string): Promise<void> {
  const [t, r] = await Promise.all([rpc<any>("eth_getTransactionByHash", [hash]), rpc<any>("eth_getTransactionReceipt", [hash])]);
  if (!t) throw new Error(`no transaction ${hash}`);
  const status = r ? (r.status === "0x1" ? `<span class="ok">success</span>` : `<span class="bad">reverted</span>`) : "pending";
  const inference = r ? await inferenceSection(t, r) : "";
  el.innerHTML = `<h1>Transaction</h1>${table(["field", "value"], [
    ["hash", `<span class="mono">${esc(t.hash)}</span>`],
    ["status", status],
    ["block", r ? blockLink(hexToNum(r.blockNumber)) : "pending"],
    ["from", addrLink(t.from)],
    ["to", addrLink(t.to)],
    ["value (wei)", BigInt(t.value).toString()],
    ["gas used", r ? hexToNum(r.gasUsed).toLocaleString() : ""],
    ["input", `<code class="wrap">${esc(t.input.length > 400 ? t.input.slice(0, 400) + "…" : t.input)}</code>`],
  ], "kv")}${inference}${registrySection(t)}<h2>Logs</h2>${r && r.logs.length ? table(["address", "topics", "data"], r.logs.map((l: any) => [addrLink(l.address), l.topics.map((x: string) => `<div class="mono">${esc(short(x))}</div>`).join(""), `<code class="wrap">${esc(l.data.length > 200 ? l.data.slice(0, 200) + "…" : l.data)}</code>`])) : `<p class="muted">none</p>`}`;
  verifyButton(el, t, r);
}

/** The decoded inference call in `t` with its sidecar entry ("" if none). */
export async function inferenceSection(t: any, r: any): Promise<string> {
  const call = decode(t.input);
  if (!call) return "";
  const sc = await rpc<any>("gradnet_sidecar", [r.blockNumber, quorumOf(call.mode)]).catch(() => null);
  const entry = sc?.calls?.find((c: any) => c.requestHash === call.requestHash);
  return describe(call, entry, r.status === "0x1") + (entry ? `<p><button id="verify-chain">Verify in this browser</button></p><div id="checks"></div>` : "");
}

/** Wires a "Verify in this browser" button (if shown) to the sidecar checks. */
export function verifyButton(el: HTMLElement, t: any, r: any): void {
  const button = el.querySelector<HTMLButtonElement>("#verify-chain");
  if (!button) return;
  button.onclick = async () => {
    const out = el.querySelector("#checks")!;
    out.innerHTML = "checking…";
    try {
      out.innerHTML = renderChecks(await checkInference(t, r), "chain-checks");
    } catch (e) {
      out.innerHTML = errorBox(e);
    }
  };
}

export async function address(el: HTMLElement, a: string): Promise<void> {
  const [bal, nonce, code] = await Promise.all([
    rpc<string>("eth_getBalance", [a, "latest"]),
    rpc<string>("eth_getTransactionCount", [a, "latest"]),
    rpc<string>("eth_getCode", [a, "latest"]),
  ]);
  el.innerHTML = `<h1>Address</h1>${table(["field", "value"], [
    ["address", `<span class="mono">${esc(a)}</span>${PRECOMPILES[a.toLowerCase()] ? ` (${PRECOMPILES[a.toLowerCase()]})` : ""}`],
    ["balance (wei)", BigInt(bal).toString()],
    ["transactions sent", String(hexToNum(nonce))],
    ["code", code && code !== "0x" ? `${(code.length - 2) / 2} bytes` : "none (an account)"],
  ], "kv")}`;
}

async function sidecarSummary(n: number): Promise<string> {
  const sc = await rpc<any>("gradnet_sidecar", [`0x${n.toString(16)}`]).catch(() => null);
  if (!sc || !sc.calls.length) return "";
  return `<h2>Inference sidecar</h2>${table(
    ["request", "asked", "answers", "outcomes"],
    sc.calls.map((c: any) => [
      `<span class="mono">${esc(short(c.requestHash, 14))}</span>`,
      String(c.asked.length),
      String(c.answers.length),
      c.outcomes.map((o: any) => `${esc(o.kind)} (${o.bytes} B)`).join(", "),
    ]),
    "sidecar",
  )}`;
}
