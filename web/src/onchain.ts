// Inference through the chain: a model input (the playground's JSON) as
// OpenGradient's fixed-point tensors, a runModelInference call to the
// devnet's demo contract (it forwards to the precompile 0x…F4 and logs the
// return data), and the output read back from that log.

import { decodeFunctionResult, encodeFunctionData, encodeFunctionResult, parseAbi, type Hex } from "viem";

export const DEMO_CONTRACT = "0x0000000000000000000000000000000000000de0" as Hex;

export const MODES: Record<string, number> = { VANILLA: 0, ZKML: 1, TEE: 2, QUORUM: 3 };

const abi = parseAbi([
  "struct Number { int128 value; int128 decimals; }",
  "struct NumberTensor { string name; Number[] values; uint32[] shape; }",
  "struct StringTensor { string name; string[] values; }",
  "struct JsonScalar { string name; string value; }",
  "struct ModelInput { NumberTensor[] numbers; StringTensor[] strings; }",
  "struct ModelInferenceRequest { uint8 mode; string modelCID; ModelInput input; }",
  "struct ModelOutput { NumberTensor[] numbers; StringTensor[] strings; JsonScalar[] jsons; bool is_simulation_result; }",
  "function runModelInference(ModelInferenceRequest request) returns (ModelOutput)",
  "struct ToolCall { string id; string name; string arguments; }",
  "struct ChatMessage { string role; string content; string name; string tool_call_id; ToolCall[] tool_calls; }",
  "struct ToolDefinition { string description; string name; string parameters; }",
  "struct LLMChatRequest { uint8 mode; string modelCID; ChatMessage[] messages; ToolDefinition[] tools; string tool_choice; uint32 max_tokens; string[] stop_sequence; uint32 temperature; }",
  "struct LLMChatResponse { string finish_reason; ChatMessage message; }",
  "function runLLMChat(LLMChatRequest request) returns (LLMChatResponse)",
]);

type Num = { value: bigint; decimals: bigint };

/** A JSON number as value·10^-decimals, exactly as written. */
export function fixedPoint(n: number): Num {
  if (!Number.isFinite(n)) throw new Error(`${n} is not a finite number`);
  const [mantissa, exp = "0"] = String(n).toLowerCase().split("e");
  const [int, frac = ""] = mantissa.split(".");
  let decimals = frac.length - Number(exp);
  let value = BigInt(int + frac);
  if (decimals < 0) {
    value *= 10n ** BigInt(-decimals);
    decimals = 0;
  }
  return { value, decimals: BigInt(decimals) };
}

function flatten(name: string, v: unknown, shape: number[], depth: number, out: unknown[]): void {
  if (!Array.isArray(v)) {
    out.push(v);
    return;
  }
  if (shape.length === depth) shape.push(v.length);
  else if (shape[depth] !== v.length) throw new Error(`input ${name} is ragged: rows of ${shape[depth]} and ${v.length} values`);
  for (const x of v) flatten(name, x, shape, depth + 1, out);
}

/** The playground's `{name: nested array}` as the precompile's ModelInput. */
export function modelInput(inputs: Record<string, unknown>) {
  if (typeof inputs !== "object" || inputs === null || Array.isArray(inputs)) throw new Error('the inputs must be an object of named tensors, like {"x": [[1, 2]]}');
  const numbers = [];
  const strings = [];
  for (const [name, v] of Object.entries(inputs)) {
    const shape: number[] = [];
    const flat: unknown[] = [];
    flatten(name, v, shape, 0, flat);
    if (flat.every((x) => typeof x === "number")) numbers.push({ name, values: (flat as number[]).map(fixedPoint), shape });
    else if (flat.every((x) => typeof x === "string")) strings.push({ name, values: flat as string[] });
    else throw new Error(`input ${name} mixes numbers and other values`);
  }
  return { numbers, strings };
}

/** Calldata of `runModelInference` (the demo contract forwards it unchanged). */
export function inferenceCall(mode: number, model: string, inputs: Record<string, unknown>): Hex {
  return encodeFunctionData({ abi, functionName: "runModelInference", args: [{ mode, modelCID: model, input: modelInput(inputs) }] });
}

function nest(values: number[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return values;
  const step = values.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) => nest(values.slice(i * step, (i + 1) * step), shape.slice(1)));
}

/** The precompile's return data as `{name: nested array}` (plus JSON scalars). */
export function decodeOutput(data: Hex): Record<string, unknown> {
  const out = decodeFunctionResult({ abi, functionName: "runModelInference", data });
  const result: Record<string, unknown> = {};
  for (const t of out.numbers) result[t.name] = nest(t.values.map((n) => Number(n.value) / 10 ** Number(n.decimals)), t.shape);
  for (const t of out.strings) result[t.name] = t.values;
  for (const j of out.jsons) result[j.name] = j.value;
  return result;
}

/** Calldata of `runLLMChat`: one user message, greedy decoding. */
export function chatCall(mode: number, model: string, message: string, maxTokens: number): Hex {
  const messages = [{ role: "user", content: message, name: "", tool_call_id: "", tool_calls: [] }];
  return encodeFunctionData({
    abi,
    functionName: "runLLMChat",
    args: [{ mode, modelCID: model, messages, tools: [], tool_choice: "", max_tokens: maxTokens, stop_sequence: [], temperature: 0 }],
  });
}

/** The answer in `runLLMChat`'s return data. */
export function decodeChat(data: Hex): { finish: string; content: string } {
  const r = decodeFunctionResult({ abi, functionName: "runLLMChat", data });
  return { finish: r.finish_reason, content: r.message.content };
}

/** What every validator adds to a dev enclave's TEE result (a JSON value,
 *  as every `jsons` value is): `gradnet_inference::precompile::DEV_ENCLAVE_JSON`. */
export const DEV_ENCLAVE_JSON = '{"enclave":"dev","attested_by":"a dev root this genesis pins (not a real enclave)"}';

/** A TEE result served by a dev enclave as the contract receives it: every
 *  validator adds `{"name": "tee", "value": DEV_ENCLAVE_JSON}` to its jsons. */
export function markDevEnclave(data: Hex): Hex {
  const out = decodeFunctionResult({ abi, functionName: "runModelInference", data });
  return encodeFunctionResult({ abi, functionName: "runModelInference", result: { ...out, jsons: [...out.jsons, { name: "tee", value: DEV_ENCLAVE_JSON }] } });
}

/** The demo contract's log of the return data (LOG0), if the receipt has one. */
export function loggedResult(receipt: any): Hex | null {
  const log = receipt?.logs?.find((l: any) => l.address.toLowerCase() === DEMO_CONTRACT && l.topics.length === 0);
  return log ? (log.data as Hex) : null;
}
