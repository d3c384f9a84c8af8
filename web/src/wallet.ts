// Sends transactions from the console: signed here with a private key kept
// for this tab only (sessionStorage; `gradnet devnet` prints funded dev
// keys), or by the browser's own wallet (EIP-1193) when one is present.

import { privateKeyToAccount } from "viem/accounts";
import type { Hex } from "viem";
import { rpc, hexToNum } from "./rpc";

const STORED = "gradnet-console-key";

export const savedKey = (): string => sessionStorage.getItem(STORED) ?? "";

/** Keeps `key` as this tab's account; an empty one forgets it (the browser
 * wallet signs then, if there is one). */
export function keepKey(key: string): void {
  if (key.trim()) sessionStorage.setItem(STORED, key.trim());
  else sessionStorage.removeItem(STORED);
}

export const hasBrowserWallet = (): boolean => Boolean((window as any).ethereum);

/** The form field for the sending account (shown for on-chain modes only). */
export const accountField = (): string =>
  `<label id="account" hidden>Account: private key, kept in this tab only${hasBrowserWallet() ? " (empty: your browser wallet)" : ""} <input name="key" type="password" autocomplete="off" value="${savedKey().replace(/"/g, "")}" placeholder="0x… (gradnet devnet prints funded keys)" /></label>`;

/** Shows the account field while `select` names an on-chain mode (any but
 * "node"), and always on a node that charges for inference. */
export function toggleAccount(form: HTMLElement, select: HTMLSelectElement): void {
  let charges = false;
  const show = () => (form.querySelector<HTMLElement>("#account")!.hidden = select.value === "node" && !charges);
  select.onchange = show;
  fetch("/health")
    .then((r) => r.json())
    .then((h) => {
      charges = Boolean(h.payments);
      show();
    })
    .catch(() => {});
}

/** The account of a pasted private key (0x optional); none if it is not one. */
function account(key: string) {
  key = key.trim();
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(key)) return undefined;
  return privateKeyToAccount((key.startsWith("0x") ? key : `0x${key}`) as Hex);
}

/** The address a pasted key signs for (none: the browser wallet's, or no key). */
export const accountOf = (key: string): Hex | undefined => account(key)?.address;

/** Sends a call to `to` with `data`; its transaction hash. */
export async function send(key: string, to: Hex, data: Hex, gas = 5_000_000n): Promise<Hex> {
  const wallet = (window as any).ethereum;
  key = key.trim();
  if (!key && wallet) {
    const [from] = await wallet.request({ method: "eth_requestAccounts" });
    return wallet.request({ method: "eth_sendTransaction", params: [{ from, to, data, gas: `0x${gas.toString(16)}` }] });
  }
  const signer = account(key);
  if (!signer)
    throw new Error("a transaction needs an account: paste a funded private key (0x and 64 hex digits; `gradnet devnet` prints its dev keys)");
  sessionStorage.setItem(STORED, key);
  const [chainId, nonce, gasPrice, tip] = await Promise.all([
    rpc<string>("eth_chainId"),
    rpc<string>("eth_getTransactionCount", [signer.address, "pending"]),
    rpc<string>("eth_gasPrice"),
    rpc<string>("eth_maxPriorityFeePerGas"),
  ]);
  const raw = await signer.signTransaction({
    type: "eip1559",
    chainId: hexToNum(chainId),
    nonce: hexToNum(nonce),
    to,
    data,
    gas,
    maxFeePerGas: BigInt(gasPrice) * 2n + BigInt(tip),
    maxPriorityFeePerGas: BigInt(tip),
  });
  return rpc<Hex>("eth_sendRawTransaction", [raw]);
}

/** The transaction's receipt once it is in a final block. */
export async function receiptOf(hash: string, timeoutMs = 120_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = await rpc<any>("eth_getTransactionReceipt", [hash]);
    if (r) return r;
    await new Promise((ok) => setTimeout(ok, 250));
  }
  throw new Error(`transaction ${hash} is not in a block after ${timeoutMs / 1000} s`);
}
