// Hub writes signed by the console's account, as every node checks them:
// EIP-712 typed data `Request` (method, path with query, keccak256 of the
// body — for an upload, of the file — timestamp, random nonce) on the
// node's chain id. The account is the private key pasted for this tab
// (which signs each write) or the browser's wallet (which signs in once for
// a session token); with neither, writes go unsigned, which only a node in
// development mode (`gradnet devnet`, `gradnet demo`) accepts.

import { keccak256, toBytes, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { savedKey } from "./wallet";

const REQUEST = [
  { name: "method", type: "string" },
  { name: "path", type: "string" },
  { name: "bodyHash", type: "bytes32" },
  { name: "timestamp", type: "uint64" },
  { name: "nonce", type: "bytes32" },
] as const;

let chainId: Promise<number> | undefined;
const nodeChain = (): Promise<number> =>
  (chainId ??= fetch("/health")
    .then((r) => r.json())
    .then((h) => Number(h.chain_id)));

const TYPES = {
  EIP712Domain: [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
  ],
  Request: REQUEST,
};

/** Signs `method path` over a body hashing to `bodyHash` with `key`, or the
 * browser `wallet` when no key is given. */
async function signed(key: string, wallet: any, method: string, path: string, bodyHash: Hex): Promise<Record<string, string>> {
  const timestamp = BigInt(Math.floor(Date.now() / 1000));
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(32)));
  const message = { method, path, bodyHash, timestamp, nonce };
  const domain = { name: "gradnet", version: "1", chainId: await nodeChain() };
  let account: Hex;
  let signature: Hex;
  if (key) {
    const a = privateKeyToAccount((key.startsWith("0x") ? key : `0x${key}`) as Hex);
    account = a.address;
    signature = await a.signTypedData({ domain, types: { Request: REQUEST }, primaryType: "Request", message });
  } else {
    [account] = await wallet.request({ method: "eth_requestAccounts" });
    const typed = { domain, types: TYPES, primaryType: "Request", message: { ...message, timestamp: timestamp.toString() } };
    signature = await wallet.request({ method: "eth_signTypedData_v4", params: [account, JSON.stringify(typed)] });
  }
  return {
    "x-gradnet-account": account,
    "x-gradnet-signature": signature,
    "x-gradnet-timestamp": timestamp.toString(),
    "x-gradnet-nonce": nonce,
  };
}

// A browser wallet signs in once per tab: the node's session token then
// stands for its signature, so writes do not ask the wallet every time.
const SESSION = "gradnet-console-session";

/** Forgets this tab's session (after the node refused it). */
export const forgetSession = (): void => sessionStorage.removeItem(SESSION);

const SESSION_ERRORS = ["session_expired", "session_revoked", "bad_session_token"];

/** After a refused write: forgets the tab's session if the node refused it
 * (the next write signs in again). */
export function refused(code: string | undefined): void {
  if (code && SESSION_ERRORS.includes(code)) forgetSession();
}

async function walletSession(wallet: any): Promise<Record<string, string>> {
  const [current] = (await wallet.request({ method: "eth_accounts" })) ?? [];
  const saved = JSON.parse(sessionStorage.getItem(SESSION) ?? "null");
  if (saved && current && saved.account.toLowerCase() === String(current).toLowerCase() && saved.expires_at - 60 > Date.now() / 1000)
    return { authorization: `Bearer ${saved.token}` };
  const body = "{}";
  const headers = await signed("", wallet, "POST", "/api/v0/sessions", keccak256(toBytes(body)));
  const r = await fetch("/api/v0/sessions", { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  const j = await r.json().catch(() => undefined);
  if (!r.ok) throw new Error(`${j?.error?.code ?? r.status}: ${j?.error?.message ?? "sign-in refused"}`);
  sessionStorage.setItem(SESSION, JSON.stringify(j));
  return { authorization: `Bearer ${j.token}` };
}

/** What authorizes a write of `method path` over a body hashing to
 * `bodyHash`: a signature by the tab's key, the browser wallet's session,
 * or nothing (only a development node takes that). */
export async function signHeaders(method: string, path: string, bodyHash: Hex): Promise<Record<string, string>> {
  const key = savedKey().trim();
  const wallet = (window as any).ethereum;
  if (key) return signed(key, undefined, method, path, bodyHash);
  if (wallet) return walletSession(wallet);
  return {};
}

/** POSTs JSON to the node's API, signed; errors carry the API's message. */
export async function signedPost<T = any>(path: string, body: unknown): Promise<T> {
  const text = JSON.stringify(body);
  const post = async () => {
    const headers = await signHeaders("POST", path, keccak256(toBytes(text)));
    return fetch(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: text });
  };
  let r = await post();
  let reply = await r.text();
  if (r.status === 401 && SESSION_ERRORS.some((c) => reply.includes(c))) {
    // the node no longer takes the tab's session (expired, signed out, restarted with a new key): sign in again
    forgetSession();
    r = await post();
    reply = await r.text();
  }
  let json: any;
  try {
    json = JSON.parse(reply);
  } catch {
    json = undefined;
  }
  if (!r.ok) {
    const e = json?.error;
    throw new Error(e ? `${e.code ?? r.status}: ${e.message}` : `${r.status}: ${reply}`);
  }
  return json as T;
}

/** What authorizes uploading `file` to `path` (which names it in ?name=):
 * a signature over the file's keccak256, or the wallet's session. */
export async function uploadHeaders(path: string, file: File): Promise<Record<string, string>> {
  const wallet = (window as any).ethereum;
  if (!savedKey().trim()) return wallet ? walletSession(wallet) : {};
  const hash = keccak256(new Uint8Array(await file.arrayBuffer()));
  return { ...(await signHeaders("POST", path, hash)), "x-gradnet-body-hash": hash };
}
