// The request and output hashes a receipt signs, recomputed in the
// browser: BLAKE3 over gradnet's canonical tensor encoding (count, then
// per tensor in name order: name, dtype code, rank, dims, little-endian
// values; lengths u64 little-endian), printed as content ids (`b3` +
// lowercase unpadded base32).

import { blake3 } from "@noble/hashes/blake3.js";

const CODES: Record<string, number> = { f32: 1, f64: 2, i32: 3, i64: 4, bool: 5, string: 6 };
const WIDTH: Record<string, number> = { f32: 4, f64: 8, i32: 4, i64: 8, bool: 1 };
const B32 = "abcdefghijklmnopqrstuvwxyz234567";

class Bytes {
  parts: Uint8Array[] = [];
  u64(n: number) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
    this.parts.push(b);
  }
  raw(b: Uint8Array) {
    this.parts.push(b);
  }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.raw(b);
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export function cid(hash: Uint8Array): string {
  let bits = 0, value = 0, out = "b3";
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export function cidBytes(c: string): Uint8Array {
  const out: number[] = [];
  let bits = 0, value = 0;
  for (const ch of c.slice(2)) {
    value = (value << 5) | B32.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

function flatten(v: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) v.forEach((x) => flatten(x, out));
  else out.push(v);
  return out;
}

function shapeOf(v: unknown): number[] {
  const s: number[] = [];
  while (Array.isArray(v)) {
    s.push(v.length);
    v = v[0];
  }
  return s;
}

/** Tensors as `{name: {dtype, shape, values}}`, encoded canonically into `b`. */
function canonical(b: Bytes, tensors: Record<string, { dtype: string; shape: number[]; values: unknown[] }>) {
  const names = Object.keys(tensors).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  b.u64(names.length);
  for (const name of names) {
    const t = tensors[name];
    b.str(name);
    b.raw(Uint8Array.of(CODES[t.dtype]));
    b.u64(t.shape.length);
    t.shape.forEach((d) => b.u64(d));
    if (t.dtype === "string") {
      t.values.forEach((s) => b.str(String(s)));
      continue;
    }
    const w = WIDTH[t.dtype];
    const data = new Uint8Array(w * t.values.length);
    const dv = new DataView(data.buffer);
    t.values.forEach((x, i) => {
      const n = Number(x);
      if (t.dtype === "f32") dv.setFloat32(i * w, n, true);
      else if (t.dtype === "f64") dv.setFloat64(i * w, n, true);
      else if (t.dtype === "i32") dv.setInt32(i * w, n, true);
      else if (t.dtype === "i64") dv.setBigInt64(i * w, BigInt(x as number), true);
      else dv.setUint8(i, x ? 1 : 0);
    });
    b.raw(data);
  }
}

/** The output hash of a `/v1/infer` response (plain JSON outputs and `output_types`). */
export function outputHash(outputs: Record<string, unknown>, types: Record<string, { dtype: string; shape: number[] }>): string {
  const b = new Bytes();
  b.str("gradnet/infer-output/v1");
  const tensors: Record<string, { dtype: string; shape: number[]; values: unknown[] }> = {};
  for (const [name, v] of Object.entries(outputs)) tensors[name] = { dtype: types[name].dtype, shape: types[name].shape, values: flatten(v) };
  canonical(b, tensors);
  return cid(blake3(b.done()));
}

/** The request hash: model, mode (its ABI code) and the inputs as the model's dtypes. */
export function requestHash(model: string, modeCode: number, inputs: Record<string, unknown>, dtypes: Record<string, string>): string {
  const b = new Bytes();
  b.str("gradnet/infer-request/v1");
  const m = cidBytes(model);
  b.u64(m.length);
  b.raw(m);
  b.raw(Uint8Array.of(modeCode));
  const tensors: Record<string, { dtype: string; shape: number[]; values: unknown[] }> = {};
  for (const [name, v] of Object.entries(inputs)) tensors[name] = { dtype: dtypes[name] ?? "f32", shape: shapeOf(v), values: flatten(v) };
  canonical(b, tensors);
  return cid(blake3(b.done()));
}

/** An LLM answer's output hash: the generated text and why it ended. */
export function llmOutputHash(text: string, finishReason: string): string {
  const b = new Bytes();
  b.str("gradnet/llm-output/v1");
  b.str(finishReason);
  b.str(text);
  return cid(blake3(b.done()));
}
