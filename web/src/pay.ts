// Paying a node that charges for inference (x402 v2, scheme "upto"): a
// 402's PAYMENT-REQUIRED header names the payee, the escrow and the
// EIP-712 voucher to sign; the console signs one (with the tab's key, else
// the browser wallet) letting the node charge up to BUDGET more than it has
// charged, keeps it for this tab, and sends it with each call until the
// node asks for a higher one. The account must have deposited to the node
// (`gradnet pay deposit`).

import { type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { savedKey } from "./wallet";

/** Wei one voucher authorizes beyond what the node has charged: 0.001 ETH. */
const BUDGET = 10n ** 15n;
/** Seconds a voucher stays redeemable. */
const TTL = 3600;
const STORED = "gradnet-console-voucher";

const toB64 = (s: string) => btoa(unescape(encodeURIComponent(s)));
const fromB64 = (s: string) => decodeURIComponent(escape(atob(s)));

/** Signs a voucher for the terms of a 402 (its decoded PAYMENT-REQUIRED). */
async function voucherFor(required: any): Promise<string> {
  const a = required.accepts?.[0];
  if (!a || a.scheme !== "upto") throw new Error("the node asks for a payment this console cannot make");
  const key = savedKey().trim();
  const wallet = (window as any).ethereum;
  if (!key && !wallet)
    throw new Error(`this node charges ${a.amount} wei for this: paste a private key (one that deposited to ${a.payTo}: gradnet pay deposit) or use a browser wallet`);
  const charged = BigInt(a.extra?.charged ?? "0");
  const least = BigInt(a.extra?.minCumulative ?? "0");
  const cumulative = charged + BUDGET > least ? charged + BUDGET : least;
  const expiry = BigInt(Math.floor(Date.now() / 1000) + TTL);
  const domain = a.extra.domain;
  let payer: Hex;
  let signature: Hex;
  if (key) {
    const acct = privateKeyToAccount((key.startsWith("0x") ? key : `0x${key}`) as Hex);
    payer = acct.address;
    signature = await acct.signTypedData({ domain, types: a.extra.types, primaryType: "Voucher", message: { payer, payee: a.payTo, cumulative, expiry } });
  } else {
    [payer] = await wallet.request({ method: "eth_requestAccounts" });
    const typed = {
      domain,
      types: {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "version", type: "string" },
          { name: "chainId", type: "uint256" },
          { name: "verifyingContract", type: "address" },
        ],
        ...a.extra.types,
      },
      primaryType: "Voucher",
      message: { payer, payee: a.payTo, cumulative: cumulative.toString(), expiry: expiry.toString() },
    };
    signature = await wallet.request({ method: "eth_signTypedData_v4", params: [payer, JSON.stringify(typed)] });
  }
  return toB64(
    JSON.stringify({
      x402Version: 2,
      accepted: { scheme: "upto", network: a.network, asset: a.asset, payTo: a.payTo },
      payload: { voucher: { payer, payee: a.payTo, cumulative: cumulative.toString(), expiry: Number(expiry) }, signature },
    }),
  );
}

const FIXABLE = ["payment_required", "insufficient_authorization", "stale_voucher", "voucher_expired"];

/** `fetch` for inference: sends this tab's voucher, and answers a 402 by
 * signing a new one (twice at most: a first 402 does not know the payer). */
export async function paidFetch(path: string, init: RequestInit): Promise<Response> {
  const send = (voucher: string | null) =>
    fetch(path, { ...init, headers: { ...(init.headers as Record<string, string>), ...(voucher ? { "payment-signature": voucher } : {}) } });
  let r = await send(sessionStorage.getItem(STORED));
  for (let i = 0; i < 2 && r.status === 402; i++) {
    const header = r.headers.get("payment-required");
    const body = await r.clone().json().catch(() => ({}));
    if (!header || !FIXABLE.includes(body?.error?.code)) return r;
    const voucher = await voucherFor(JSON.parse(fromB64(header)));
    sessionStorage.setItem(STORED, voucher);
    r = await send(voucher);
  }
  return r;
}

/** A paid answer's charge, for people (from its receipt). */
export function chargeNote(receipt: any): string {
  const c = receipt?.charge;
  if (!c) return "";
  const eth = (w: string) => (Number(BigInt(w)) / 1e18).toLocaleString(undefined, { maximumSignificantDigits: 6 });
  return `<p id="charge">paid: ${eth(c.amount)} ETH to ${c.payee} (${eth(c.total)} ETH charged to ${c.payer} in all; the receipt signs it)</p>`;
}
