// Hub writes signed by the console's account, as every node checks them:
// EIP-712 typed data `Request` (method, path with query, keccak256 of the
// body — for an upload, of the file — timestamp, random nonce) on the
// node's chain id. The account is the private key pasted for this tab or
// the browser's wallet; with neither, writes go unsigned, which only a node
// in development mode (`gradnet devnet`, `gradnet demo`) accepts.

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

/** The signature headers for `method path` over a body hashing to `bodyHash`. */
export async function signHeaders(method: string, path: string, bodyHash: Hex): Promise<Record<string, string>> {
  const key = savedKey().trim();
  const wallet = (window as any).ethereum;
  if (!key && !wallet) return {};
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
    const typed = {
      domain,
      types: {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "version", type: "string" },
          { name: "chainId", type: "uint256" },
        ],
        Request: REQUEST,
      },
      primaryType: "Request",
      message: { ...message, timestamp: timestamp.toString() },
    };
    signature = await wallet.request({ method: "eth_signTypedData_v4", params: [account, JSON.stringify(typed)] });
  }
  return {
    "x-gradnet-account": account,
    "x-gradnet-signature": signature,
    "x-gradnet-timestamp": timestamp.toString(),
    "x-gradnet-nonce": nonce,
  };
}

/** POSTs JSON to the node's API, signed; errors carry the API's message. */
export async function signedPost<T = any>(path: string, body: unknown): Promise<T> {
  const text = JSON.stringify(body);
  const headers = await signHeaders("POST", path, keccak256(toBytes(text)));
  const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: text });
  const reply = await r.text();
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

/** Signature headers for uploading `file` to `path` (which names it in ?name=). */
export async function uploadHeaders(path: string, file: File): Promise<Record<string, string>> {
  const hash = keccak256(new Uint8Array(await file.arrayBuffer()));
  const h = await signHeaders("POST", path, hash);
  return Object.keys(h).length ? { ...h, "x-gradnet-body-hash": hash } : h;
}
