// The model registry at 0x…F9: the hub's names, owners and versions on
// chain. The explorer decodes its transactions: who registered which name,
// added or removed whom, gave it to whom, and which files a version lists.

import { decodeFunctionData, encodeFunctionData, parseAbi, type Hex } from "viem";
import { esc, short, table, bytes } from "./dom";

export const MODEL_REGISTRY = "0x00000000000000000000000000000000000000f9";

const ABI = parseAbi([
  "struct ModelFile { string name; string cid; uint64 size; }",
  "function createRepository(string name, string description)",
  "function addCollaborator(string name, address account)",
  "function removeCollaborator(string name, address account)",
  "function transferOwnership(string name, address newOwner)",
  "function publishVersion(string name, bool major, string notes, ModelFile[] files) returns (string)",
]);

const repoLink = (name: string) => `<a href="#/hub/${encodeURIComponent(name)}">${esc(name)}</a>`;
const account = (a: string) => `<a class="mono" href="#/address/${a}">${esc(short(a))}</a>`;

/** The decoded model-registry call in `t` ("" when `t` is not one). */
export function registrySection(t: any): string {
  if (String(t.to ?? "").toLowerCase() !== MODEL_REGISTRY) return "";
  let call;
  try {
    call = decodeFunctionData({ abi: ABI, data: t.input as Hex });
  } catch (e) {
    return `<h2>Model registry call</h2><p class="bad">not a model-registry call: ${esc(String(e))}</p>`;
  }
  const a: any = call.args;
  const rows: string[][] = [["function", esc(call.functionName)], ["repository", repoLink(a[0])]];
  let files = "";
  switch (call.functionName) {
    case "createRepository":
      rows.push(["description", esc(a[1])], ["owner (the first to register the name)", account(t.from)]);
      break;
    case "addCollaborator":
    case "removeCollaborator":
      rows.push(["collaborator", account(a[1])]);
      break;
    case "transferOwnership":
      rows.push(["from", account(t.from)], ["to", account(a[1])]);
      break;
    case "publishVersion":
      rows.push(["release", a[1] ? "major" : "minor"], ["notes", esc(a[2])], ["publisher", account(t.from)]);
      files = table(
        ["file", "size", "content id"],
        a[3].map((f: any) => [esc(f.name), bytes(Number(f.size)), `<a class="mono" href="#/model/${esc(f.cid)}">${esc(short(f.cid, 14))}</a>`]),
        "registry-files",
      );
      break;
  }
  return `<h2>Model registry call</h2>${table(["field", "value"], rows, "kv registry-call")}${files}`;
}

/** A model-registry transaction: checked with eth_call first (so a refusal
 * shows its reason, e.g. "may not publish"), then sent and awaited. */
export async function registryTx(key: string, data: Hex): Promise<any> {
  const { send, receiptOf, accountOf } = await import("./wallet");
  const { rpc } = await import("./rpc");
  const from = accountOf(key) ?? (await (window as any).ethereum?.request({ method: "eth_requestAccounts" }))?.[0];
  await rpc("eth_call", [{ from, to: MODEL_REGISTRY, data }, "latest"]);
  const r = await receiptOf(await send(key, MODEL_REGISTRY as Hex, data, 3_000_000n));
  if (r.status !== "0x1") throw new Error(`the model registry refused the transaction ${r.transactionHash}`);
  return r;
}

export const createData = (name: string, description: string): Hex =>
  encodeFunctionData({ abi: ABI, functionName: "createRepository", args: [name, description] });

export const publishData = (name: string, major: boolean, notes: string, files: { name: string; cid: string; size: bigint }[]): Hex =>
  encodeFunctionData({ abi: ABI, functionName: "publishVersion", args: [name, major, notes, files] });
