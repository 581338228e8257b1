import type { IncomingMessage } from "node:http";
import { ServerRequestError } from "../../platform/errors.js";

/*
 * How the server runtime's HTTP client words its failures: each names the route and the server's address, quotes
 * what the server said (bounded), hints at a fix for a refused key or an untrusted certificate, and never holds the
 * key.
 */

/** A server error message is quoted this far at most. */
const MAX_QUOTED_MESSAGE = 300;

/** The client's errors: they name the route and the server's address, and never hold the key. */
export class ServerErrors {
  constructor(
    private readonly display: string,
    private readonly apiKey: string | undefined,
  ) {}

  status(label: string, status: number, response: IncomingMessage, text: string): ServerRequestError {
    const quoted = serverMessage(text) ?? response.statusMessage ?? "";
    const said = quoted ? `: ${this.redact(quoted).slice(0, MAX_QUOTED_MESSAGE)}` : "";
    if (status === 401 || status === 403) {
      return this.make(
        "unauthorized",
        label,
        `was refused (${status}${said}); check LLM_SERVER_API_KEY`,
        status,
      );
    }
    return this.make("http", label, `failed with ${status}${said}`, status);
  }

  make(
    problem: ServerRequestError["problem"],
    label: string,
    what: string,
    status?: number,
    cause?: unknown,
  ): ServerRequestError {
    const message = `${label} at ${this.display} ${what}`;
    return new ServerRequestError(
      problem,
      label,
      message,
      status,
      cause === undefined ? undefined : { cause },
    );
  }

  /** A server or proxy may echo the request's headers back: the key never reaches a message. */
  redact(text: string): string {
    const key = this.apiKey;
    return key ? text.replaceAll(key, "[redacted]") : text;
  }
}

/** The message in a server's error body: llama-server's and OpenAI's {"error":{"message"}}, Ollama's {"error"}, vLLM's {"detail"}. */
function serverMessage(text: string): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const { error, message, detail } = body as { error?: unknown; message?: unknown; detail?: unknown };
  if (typeof error === "string") return error;
  if (typeof error === "object" && error !== null) {
    const nested = (error as { message?: unknown }).message;
    if (typeof nested === "string") return nested;
  }
  if (typeof message === "string") return message;
  if (typeof detail === "string") return detail;
  return undefined;
}

/** Node's codes for a certificate it does not trust, or one that names another host. */
const UNTRUSTED_CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
]);

/** What an operator can do about a TLS failure, beside Node's own words for it. */
export function tlsHint(code: string | undefined): string {
  if (code === undefined) return "";
  if (UNTRUSTED_CERTIFICATE_CODES.has(code))
    return " (the server's certificate is not trusted here: for a private CA, start the bot with NODE_EXTRA_CA_CERTS=/path/to/ca.pem)";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return " (the server's certificate names another host: use a LLM_SERVER_URL host that the certificate names)";
  if (code === "CERT_HAS_EXPIRED") return " (the server's certificate has expired)";
  return "";
}
