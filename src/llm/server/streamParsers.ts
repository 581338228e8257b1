import { StringDecoder } from "node:string_decoder";

/*
 * The two streaming formats ServerHttp reads: Server-Sent Events (llama-server, vLLM, OpenAI-compatible APIs) and
 * JSON lines (Ollama). Each hands on one event's data text; the caller bounds `bufferedLength`.
 */

/** Server-Sent Events: `data:` lines joined until a blank line; comments (":" pings) and other fields ignored. */
export class EventStreamParser {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";
  private data: string[] = [];

  constructor(private readonly onData: (data: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);
    let newline = this.pending.indexOf("\n");
    while (newline >= 0) {
      this.line(this.pending.slice(0, newline).replace(/\r$/, ""));
      this.pending = this.pending.slice(newline + 1);
      newline = this.pending.indexOf("\n");
    }
  }

  /** Text waiting for its line's end: bounded by the caller. */
  get bufferedLength(): number {
    return this.pending.length;
  }

  /** The stream ended: a last event without its blank line still counts. */
  end(): void {
    this.pending += this.decoder.end();
    if (this.pending) this.line(this.pending.replace(/\r$/, ""));
    this.pending = "";
    this.line("");
  }

  private line(line: string): void {
    if (line === "") {
      if (this.data.length > 0) {
        const data = this.data.join("\n");
        this.data = [];
        this.onData(data);
      }
      return;
    }
    if (line.startsWith("data:")) this.data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
}

/** NDJSON: each non-blank line is one event's data, the same as an SSE `data:` payload. */
export class JsonLinesParser {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";

  constructor(private readonly onData: (data: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);
    let newline = this.pending.indexOf("\n");
    while (newline >= 0) {
      const line = this.pending.slice(0, newline).trim();
      this.pending = this.pending.slice(newline + 1);
      if (line) this.onData(line);
      newline = this.pending.indexOf("\n");
    }
  }

  get bufferedLength(): number {
    return this.pending.length;
  }

  end(): void {
    const line = (this.pending + this.decoder.end()).trim();
    this.pending = "";
    if (line) this.onData(line);
  }
}
