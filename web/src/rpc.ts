// The node's Ethereum JSON-RPC (a validator serves it at /rpc) and its
// HTTP API, both same-origin.

export class RpcError extends Error {
  constructor(public code: number, message: string) {
    super(message);
  }
}

let id = 0;

export async function rpc<T = any>(method: string, params: unknown[] = []): Promise<T> {
  const r = await fetch("/rpc", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
  });
  if (r.status === 404) throw new RpcError(-1, "this node runs no ledger (start it with a genesis to see the chain)");
  const body = await r.json();
  if (body.error) throw new RpcError(body.error.code, body.error.message);
  return body.result as T;
}

/** GET or POST on the node's API; errors carry the API's own message. */
export async function api<T = any>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  };
  // inference on a node that charges is paid with a voucher
  const r = body !== undefined && path.startsWith("/v1/") ? await (await import("./pay")).paidFetch(path, init) : await fetch(path, init);
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!r.ok) {
    const e = json?.error;
    throw new Error(e ? `${e.code ?? r.status}: ${e.message}` : `${r.status}: ${text}`);
  }
  return json as T;
}

export const hexToNum = (h: string | null | undefined) => (h ? parseInt(h, 16) : 0);
