import type { IncomingMessage, ServerResponse } from "node:http";
import type { FakeCdn } from "./cdn.js";
import type { RequestLog } from "./requestLog.js";
import type { RestChecks } from "./restChecks.js";
import { type RouteContext, route } from "./restRoutes.js";
import type { RecordedRequest } from "./types.js";

/** Every other route's bucket: far from its limit, as a quiet bot's would be. */
const GENERIC_RATE_LIMIT_HEADERS: Readonly<Record<string, string>> = {
  "x-ratelimit-limit": "50",
  "x-ratelimit-remaining": "49",
  "x-ratelimit-reset-after": "1.000",
};

/**
 * The HTTP side of the loopback Discord: CDN downloads go to the CDN; every REST request is recorded, then
 * answered by a test's override, else refused by Discord's checks, else served by its route.
 */
export class RestApi {
  constructor(
    private readonly log: RequestLog,
    private readonly checks: RestChecks,
    private readonly cdn: FakeCdn,
    private readonly context: RouteContext,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname.startsWith("/attachments/")) {
      this.cdn.serve(url.pathname, res);
      return;
    }
    const request = await readRequest(req, url);
    const response = this.log.receive(request) ?? this.checks.check(request) ?? route(request, this.context);
    this.log.answered(request, response);
    const json = response.body === undefined ? {} : { "content-type": "application/json" };
    const limits = this.checks.takeHeaders(request) ?? GENERIC_RATE_LIMIT_HEADERS;
    res.writeHead(response.status, { ...json, ...limits, ...response.headers });
    res.end(response.body === undefined ? undefined : JSON.stringify(response.body));
  }
}

/** The request as tests see it: the path without /api/v10, the body parsed, the audit-log reason decoded. */
async function readRequest(req: IncomingMessage, url: URL): Promise<RecordedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const path = decodeURIComponent(url.pathname).replace(/^\/api\/v\d+/, "");
  return {
    method: req.method ?? "GET",
    path,
    query: url.searchParams,
    body: parseBody(raw, req.headers["content-type"]),
    authorization: req.headers.authorization,
    auditLogReason: auditLogReasonOf(req.headers["x-audit-log-reason"]),
    at: Date.now(),
  };
}

function auditLogReasonOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined ? undefined : decodeURIComponent(value);
}

function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString("utf8");
  if (contentType?.includes("application/json")) return JSON.parse(text);
  if (contentType?.includes("multipart/form-data")) {
    // discord.js puts the JSON part under payload_json; files are recorded by name, and their text by name.
    const json = text.match(/name="payload_json"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/);
    const parts = [
      ...text.matchAll(/name="files\[(\d+)\]"; filename="([^"]+)"\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/g),
    ];
    const files = [...text.matchAll(/name="files\[(\d+)\]"; filename="([^"]+)"/g)].map((m) => m[2]);
    const fileTexts = Object.fromEntries(parts.map((m) => [m[2], m[3]]));
    return { ...(json?.[1] ? (JSON.parse(json[1]) as object) : {}), files, fileTexts };
  }
  return text;
}
