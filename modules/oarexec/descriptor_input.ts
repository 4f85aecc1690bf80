/**
 * Reading the job descriptor bipbip writes on oarexec's stdin (docs/modules.md §4.5): the whole
 * stream up to end of file within a deadline (exit 30 past it), then a validated JSON descriptor
 * (exit 31 when it is not one).
 */
import {
  DESCRIPTOR_HEAD_MAX_BYTES,
  DESCRIPTOR_MAX_BYTES,
  type OarexecDescriptor,
  parseOarexecDescriptor,
} from "../../lib/protocol/mod.ts";
import { OarexecExit } from "../../lib/exec/exit_codes.ts";

export type DescriptorRead =
  | { ok: true; descriptor: OarexecDescriptor; text: string }
  | { ok: false; code: number; error: string };

/** Reads all of `input` (oarexec's stdin) within `timeoutMs`. */
export async function readDescriptor(
  input: ReadableStream<Uint8Array>,
  timeoutMs: number,
): Promise<DescriptorRead> {
  const read = await readBounded(input, timeoutMs, DESCRIPTOR_MAX_BYTES);
  return read.ok ? decodeDescriptor(read.bytes) : read;
}

/**
 * All of `input` up to its end, within `timeoutMs` (exit 30 past it) and `maxBytes` beyond the
 * descriptor limit (exit 31), for the agent's requests too.
 */
export async function readBounded(
  input: ReadableStream<Uint8Array>,
  timeoutMs: number,
  maxBytes = DESCRIPTOR_MAX_BYTES + 64,
): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; code: number; error: string }> {
  const reader = input.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((
    r,
  ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), timeout]);
      if (r === "timeout") {
        return {
          ok: false,
          code: OarexecExit.descriptorTimeout,
          error: `no descriptor within ${timeoutMs} ms`,
        };
      }
      if (r.done) break;
      size += r.value.byteLength;
      if (size > maxBytes) {
        return { ok: false, code: OarexecExit.badDescriptor, error: "descriptor too large" };
      }
      chunks.push(r.value);
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return { ok: true, bytes: all };
}

/** A validated descriptor from its bytes (exit 31 when it is not one). */
export function decodeDescriptor(all: Uint8Array): DescriptorRead {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    return { ok: false, code: OarexecExit.badDescriptor, error: "descriptor is not UTF-8" };
  }
  const parsed = parseDescriptorText(text);
  if (!parsed.ok) return { ok: false, code: OarexecExit.badDescriptor, error: parsed.error };
  return { ok: true, descriptor: parsed.value, text };
}

function parseDescriptorText(text: string) {
  // parseOarexecDescriptor bounds its input to one protocol message; a descriptor of a large
  // job is bigger, so parse here and hand it the object's text only when small enough.
  if (text.length <= DESCRIPTOR_HEAD_MAX_BYTES) return parseOarexecDescriptor(text);
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    return { ok: false as const, error: `descriptor is not JSON: ${(e as Error).message}` };
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    return { ok: false as const, error: "descriptor is not a JSON object" };
  }
  // Validate everything but the (large) resource list through the one parser.
  const { resources, ...rest } = obj as Record<string, unknown>;
  const head = parseOarexecDescriptor(JSON.stringify({ ...rest, resources: [] }));
  if (!head.ok) return head;
  if (!Array.isArray(resources) || !resources.every((x) => x && typeof x === "object")) {
    return { ok: false as const, error: 'descriptor: "resources" must be a list of objects' };
  }
  return {
    ok: true as const,
    value: { ...head.value, resources: resources as Record<string, unknown>[] },
  };
}
