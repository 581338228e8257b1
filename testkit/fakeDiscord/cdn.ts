import type { ServerResponse } from "node:http";
import type { DiscordState } from "./state.js";

/** A file on the fake CDN. */
interface FakeFile {
  readonly body: Buffer;
  readonly contentType: string;
  readonly status: number;
  readonly location?: string;
}

export interface AttachFileOptions {
  contentType?: string;
  status?: number;
  location?: string;
  declaredSize?: number;
}

/** The fake CDN, on the REST server's port under /attachments/: the files attached to the messages a test sends. */
export class FakeCdn {
  /** The CDN paths a client downloaded, in order. */
  readonly fileDownloads: string[] = [];
  /** Files the CDN serves, by path. */
  private readonly files = new Map<string, FakeFile>();

  constructor(
    private readonly state: DiscordState,
    /** The server's origin (http://127.0.0.1:port): known once it listens. */
    private readonly origin: () => string,
  ) {}

  /**
   * Puts a file on the CDN and returns the attachment object a message carries, as Discord's gateway sends it.
   * `status` and `location` make the download fail or redirect.
   */
  attachFile(name: string, body: string | Buffer, options: AttachFileOptions = {}): Record<string, unknown> {
    const id = this.state.snowflake();
    const path = `/attachments/${this.state.channelId}/${id}/${encodeURIComponent(name)}`;
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    this.files.set(path, {
      body: bytes,
      contentType: options.contentType ?? "text/plain; charset=utf-8",
      status: options.status ?? 200,
      ...(options.location === undefined ? {} : { location: options.location }),
    });
    const url = `${this.origin()}${path}`;
    return {
      id,
      filename: name,
      size: options.declaredSize ?? bytes.length,
      url,
      proxy_url: url,
      ...(options.contentType === undefined ? {} : { content_type: options.contentType }),
    };
  }

  /** Raw bytes, or a redirect, with no rate-limit headers (Discord's CDN sends none). */
  serve(path: string, res: ServerResponse): void {
    this.fileDownloads.push(path);
    const file = this.files.get(path);
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const headers: Record<string, string | number> = {
      "content-type": file.contentType,
      "content-length": file.body.length,
    };
    if (file.location !== undefined) headers.location = file.location;
    res.writeHead(file.status, headers).end(file.body);
  }
}
