/** Lines out of a byte stream: TCP connections, a child's stdout, our stdin. */
import { MAX_LINE } from "./common.ts";

/**
 * Splits a TCP byte stream into lines: a connection may carry several messages and a message
 * may arrive in several packets (docs/differences.md). Keeps at most `maxLine` bytes of a pending
 * line; a longer line is reported as an error and skipped up to its newline.
 */
export class LineSplitter {
  #pending = "";
  #overflow = false;
  readonly #decoder = new TextDecoder("utf-8", { fatal: false });
  constructor(readonly maxLine = MAX_LINE) {}

  /** Feeds bytes; returns the complete lines (without newline) and errors found. */
  push(chunk: Uint8Array): { lines: string[]; errors: string[] } {
    const text = this.#pending + this.#decoder.decode(chunk, { stream: true });
    const parts = text.split("\n");
    this.#pending = parts.pop() ?? "";
    const lines: string[] = [];
    const errors: string[] = [];
    for (const p of parts) {
      if (this.#overflow) {
        this.#overflow = false;
        errors.push("line too long, dropped");
        continue;
      }
      lines.push(p.replace(/\r$/, ""));
    }
    if (this.#pending.length > this.maxLine) {
      this.#pending = "";
      this.#overflow = true;
    }
    return { lines, errors };
  }

  /** At end of stream: the last line if it had no newline. */
  end(): string[] {
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = "";
    if (this.#overflow) return [];
    return rest.trim() === "" ? [] : [rest];
  }
}

/**
 * The lines of a byte stream (a child's stdout, our stdin), split as LineSplitter does; lines
 * longer than `maxLine` are skipped. Ends with the stream; returning early cancels it.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  maxLine = MAX_LINE,
): AsyncGenerator<string> {
  const splitter = new LineSplitter(maxLine);
  try {
    for await (const chunk of stream) yield* splitter.push(chunk).lines;
  } catch { /* the stream broke: what was read is all there is */ }
  yield* splitter.end();
}
