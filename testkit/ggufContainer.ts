import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * The GGUF v3 container: metadata and tensors, written row by row. The model builders (gguf.ts, labelSensitiveGguf.ts)
 * decide what the tensors hold; this file only knows how GGUF lays them out.
 */

const GGUF_MAGIC = 0x46554747;
const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

enum ValueType {
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
}

export type GgmlType = "f32" | "q8_0";
const GGML_TYPE_ID: Record<GgmlType, number> = { f32: 0, q8_0: 8 };
const Q8_0_BLOCK = 32;
const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

export type MetadataValue = string | number | boolean | { float: number } | string[] | { int32s: number[] };

export interface TensorSpec {
  readonly name: string;
  /** ggml order: dims[0] is the row length. */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /** Writes the tensor's data for one row at a time, so that a 500 MB model never sits in memory whole. */
  readonly fillRow: (row: number, out: Float32Array) => void;
}

/** A small, fast, deterministic PRNG (mulberry32): the same seed writes the same model. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;
  private push(buffer: Buffer) {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }
  u32(value: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    this.push(b);
  }
  i32(value: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    this.push(b);
  }
  u64(value: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(value));
    this.push(b);
  }
  f32(value: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.push(b);
  }
  string(value: string) {
    const bytes = Buffer.from(value, "utf8");
    this.u64(bytes.length);
    this.push(bytes);
  }
  bytes(buffer: Buffer) {
    this.push(buffer);
  }
  toBuffer() {
    return Buffer.concat(this.chunks);
  }
}

function writeValue(out: ByteWriter, key: string, value: MetadataValue) {
  out.string(key);
  if (typeof value === "string") {
    out.u32(ValueType.String);
    out.string(value);
  } else if (typeof value === "boolean") {
    out.u32(ValueType.Bool);
    out.bytes(Buffer.from([value ? 1 : 0]));
  } else if (typeof value === "number") {
    out.u32(ValueType.Uint32);
    out.u32(value);
  } else if (Array.isArray(value)) {
    out.u32(ValueType.Array);
    out.u32(ValueType.String);
    out.u64(value.length);
    for (const item of value) out.string(item);
  } else if ("float" in value) {
    out.u32(ValueType.Float32);
    out.f32(value.float);
  } else {
    out.u32(ValueType.Array);
    out.u32(ValueType.Int32);
    out.u64(value.int32s.length);
    for (const item of value.int32s) out.i32(item);
  }
}

function tensorBytes(tensor: TensorSpec): number {
  const rowLength = tensor.dims[0] ?? 0;
  const rows = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
  if (tensor.type === "f32") return rowLength * rows * 4;
  if (rowLength % Q8_0_BLOCK !== 0) throw new Error(`${tensor.name}: Q8_0 rows must be a multiple of 32`);
  return (rowLength / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES * rows;
}

const alignUp = (value: number) => Math.ceil(value / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

function encodeRow(type: GgmlType, values: Float32Array, target: Buffer, offset: number): number {
  if (type === "f32") {
    for (let i = 0; i < values.length; i++) target.writeFloatLE(values[i] ?? 0, offset + i * 4);
    return values.length * 4;
  }
  let at = offset;
  for (let block = 0; block < values.length; block += Q8_0_BLOCK) {
    let max = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) max = Math.max(max, Math.abs(values[block + i] ?? 0));
    const scale = max / 127;
    target.writeUInt16LE(float32ToFloat16Bits(scale), at);
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      const q = scale === 0 ? 0 : Math.round((values[block + i] ?? 0) / scale);
      target.writeInt8(Math.max(-127, Math.min(127, q)), at + 2 + i);
    }
    at += Q8_0_BLOCK_BYTES;
  }
  return at - offset;
}

export function float32ToFloat16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    const m = (mantissa | 0x800000) >> (1 - exponent);
    return sign | ((m + 0x1000) >> 13);
  }
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | ((mantissa + 0x1000) >> 13);
}

export async function writeGguf(
  path: string,
  metadata: Array<[string, MetadataValue]>,
  tensors: TensorSpec[],
) {
  const header = new ByteWriter();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.length);
  for (const [key, value] of metadata) writeValue(header, key, value);
  let dataOffset = 0;
  for (const tensor of tensors) {
    header.string(tensor.name);
    header.u32(tensor.dims.length);
    for (const dim of tensor.dims) header.u64(dim);
    header.u32(GGML_TYPE_ID[tensor.type]);
    header.u64(dataOffset);
    dataOffset = alignUp(dataOffset + tensorBytes(tensor));
  }
  const headerBuffer = header.toBuffer();

  await mkdir(dirname(path), { recursive: true });
  // Written under a temporary name, so a crash never leaves a truncated model where a cached one is expected.
  const partial = `${path}.partial-${process.pid}`;
  const stream = createWriteStream(partial);
  const write = async (buffer: Buffer) => {
    if (!stream.write(buffer)) await once(stream, "drain");
  };
  await write(headerBuffer);
  await write(Buffer.alloc(alignUp(headerBuffer.length) - headerBuffer.length));
  for (const tensor of tensors) {
    const rowLength = tensor.dims[0] ?? 0;
    const rows = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
    const values = new Float32Array(rowLength);
    const rowBytes = tensorBytes(tensor) / rows;
    const rowsPerChunk = Math.max(1, Math.floor((4 << 20) / rowBytes));
    for (let row = 0; row < rows; row += rowsPerChunk) {
      const count = Math.min(rowsPerChunk, rows - row);
      const chunk = Buffer.alloc(count * rowBytes);
      for (let i = 0; i < count; i++) {
        tensor.fillRow(row + i, values);
        encodeRow(tensor.type, values, chunk, i * rowBytes);
      }
      await write(chunk);
    }
    const size = tensorBytes(tensor);
    await write(Buffer.alloc(alignUp(size) - size));
  }
  stream.end();
  await once(stream, "finish");
  await rename(partial, path);
}
