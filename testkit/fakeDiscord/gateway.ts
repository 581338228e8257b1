import type { Server } from "node:http";
import { type WebSocket, WebSocketServer } from "ws";
import { guildPayload, shardOf, userPayload } from "./payloads.js";
import type { DiscordState } from "./state.js";
import type { FakeDiscordSettings, FakeGuild } from "./types.js";

const HEARTBEAT_INTERVAL_MS = 41_250;
/** Events a disconnected session keeps for its RESUME. */
const SESSION_EVENTS_KEPT = 1_000;
/** Discord's reasons for the gateway close codes the fake can send. */
const CLOSE_REASONS: Readonly<Record<number, string>> = {
  4004: "Authentication failed.",
  4014: "Disallowed intent(s).",
};
const DIRECT_MESSAGES_INTENT = 1 << 12;

interface GatewaySession {
  readonly id: string;
  readonly intents: number;
  readonly shard: [number, number];
  sequence: number;
  readonly events: Array<{ op: 0; t: string; s: number; d: unknown }>;
  /** The connection the session runs on; undefined while disconnected. */
  socket: WebSocket | undefined;
}

/** One READY the gateway sent. */
export interface GatewayReady {
  readonly sessionId: string;
  readonly shard: readonly [number, number];
  readonly at: number;
}

/**
 * The gateway, on the REST server's port at /gateway: HELLO, heartbeat ACKs, IDENTIFY → READY and each guild's
 * GUILD_CREATE, RESUME with the missed events, and dispatch to the sessions (and shards) that want each event.
 */
export class Gateway {
  readonly identifies: unknown[] = [];
  /**
   * Every READY the gateway sent, one per session started: from then on the session receives the events a test
   * sends (discord.js holds them until its guilds are in). A bot process is ready for traffic once its READY is here.
   */
  readonly readies: GatewayReady[] = [];
  /** RESUME payloads received: a dropped session that discord.js resumed instead of re-identifying. */
  readonly resumes: unknown[] = [];
  private readonly sockets = new Set<WebSocket>();
  /**
   * Gateway sessions, by id. A session outlives its connection: the events dispatched while it is disconnected are
   * kept, and a RESUME replays those after the sequence number it names, as Discord does.
   */
  private readonly sessions = new Map<string, GatewaySession>();
  private wss: WebSocketServer | undefined;

  constructor(
    private readonly state: DiscordState,
    private readonly settings: FakeDiscordSettings,
    /** Where READY tells discord.js to resume: known once the server listens. */
    private readonly gatewayUrl: () => string,
  ) {}

  get connectedSockets(): number {
    return this.sockets.size;
  }

  /** Takes the server's WebSocket upgrades. */
  listen(server: Server): void {
    this.wss = new WebSocketServer({ noServer: true });
    server.on("upgrade", (req, socket, head) => {
      this.wss?.handleUpgrade(req, socket, head, (ws) => this.handleSocket(ws));
    });
  }

  stop(): void {
    for (const socket of this.sockets) socket.terminate();
    this.wss?.close();
  }

  /** Sends an event to every session that wants it; a disconnected session keeps it for its RESUME. */
  dispatch(type: string, data: unknown): void {
    for (const session of this.sessions.values()) {
      if (!this.wants(session, type, data)) continue;
      session.sequence += 1;
      const event = { op: 0 as const, t: type, s: session.sequence, d: data };
      session.events.push(event);
      if (session.events.length > SESSION_EVENTS_KEPT) session.events.shift();
      if (session.socket?.readyState === session.socket?.OPEN) session.socket?.send(JSON.stringify(event));
    }
  }

  /** Asks every connection to reconnect and resume (opcode 7), as Discord does before moving a session. */
  requestReconnect(): void {
    for (const socket of this.sockets) socket.send(JSON.stringify({ op: 7, d: null }));
  }

  /** Closes every gateway connection with a close code, as Discord does when it drops a session. */
  closeGateway(code: number): void {
    for (const socket of this.sockets) socket.close(code, "closed by the fake Discord");
  }

  /**
   * Discord sends a guild's events only to the shard that owns the guild, and direct-message events (which belong
   * to shard 0) only to sessions that identified with the DirectMessages intent.
   */
  private wants(session: GatewaySession, type: string, data: unknown): boolean {
    const guildId = (data as { guild_id?: string }).guild_id;
    const [shardId, shardCount] = session.shard;
    if (guildId) return shardOf(guildId, shardCount) === shardId;
    const isDm = type.startsWith("MESSAGE_");
    return !isDm || (shardId === 0 && (session.intents & DIRECT_MESSAGES_INTENT) !== 0);
  }

  private handleSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on("close", () => {
      this.sockets.delete(ws);
      for (const session of this.sessions.values()) if (session.socket === ws) session.socket = undefined;
    });
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: HEARTBEAT_INTERVAL_MS } }));
    ws.on("message", (raw) => {
      const payload = JSON.parse(String(raw)) as { op: number; d: unknown };
      if (payload.op === 1) ws.send(JSON.stringify({ op: 11 }));
      else if (payload.op === 2) this.identify(ws, payload.d);
      else if (payload.op === 6) this.resume(ws, payload.d as { session_id?: string; seq?: number });
    });
  }

  private identify(ws: WebSocket, data: unknown): void {
    this.identifies.push(data);
    const closeCode = this.settings.closeOnIdentify;
    if (closeCode !== undefined) {
      ws.close(closeCode, CLOSE_REASONS[closeCode] ?? "closed by the fake Discord");
      return;
    }
    const gate = this.settings.readyGate;
    if (gate) {
      void gate.then(() => {
        if (ws.readyState === ws.OPEN) this.startSession(ws, data);
      });
      return;
    }
    this.startSession(ws, data);
  }

  private startSession(ws: WebSocket, data: unknown): void {
    const identify = data as { intents?: number; shard?: [number, number] };
    const session: GatewaySession = {
      id: `session-${this.state.snowflake()}`,
      intents: Number(identify.intents ?? 0),
      shard: identify.shard ?? [0, 1],
      sequence: 0,
      events: [],
      socket: ws,
    };
    this.sessions.set(session.id, session);
    this.sendReady(session);
  }

  /** RESUME: the session's missed events, in order, then RESUMED; or Invalid Session for one that is gone. */
  private resume(ws: WebSocket, data: { session_id?: string; seq?: number }): void {
    this.resumes.push(data);
    const session = this.sessions.get(data.session_id ?? "");
    if (this.settings.rejectResumes || !session) {
      ws.send(JSON.stringify({ op: 9, d: false }));
      return;
    }
    session.socket = ws;
    for (const event of session.events) if (event.s > (data.seq ?? 0)) ws.send(JSON.stringify(event));
    session.sequence += 1;
    ws.send(JSON.stringify({ op: 0, t: "RESUMED", s: session.sequence, d: {} }));
  }

  private guildsOf(session: GatewaySession): FakeGuild[] {
    const [shardId, shardCount] = session.shard;
    return this.state.guilds.filter((guild) => shardOf(guild.id, shardCount) === shardId);
  }

  private sendReady(session: GatewaySession): void {
    const send = (t: string, d: unknown) => {
      session.sequence += 1;
      const event = { op: 0 as const, t, s: session.sequence, d };
      session.events.push(event);
      session.socket?.send(JSON.stringify(event));
    };
    const { botUser, applicationId } = this.state;
    send("READY", {
      v: 10,
      user: { ...userPayload(botUser), verified: true, mfa_enabled: false, flags: 0 },
      guilds: this.guildsOf(session).map((g) => ({ id: g.id, unavailable: true })),
      session_id: session.id,
      resume_gateway_url: this.gatewayUrl(),
      shard: session.shard,
      application: { id: applicationId, flags: 0 },
      private_channels: [],
    });
    for (const guild of this.guildsOf(session)) send("GUILD_CREATE", guildPayload(guild, botUser));
    this.readies.push({ sessionId: session.id, shard: session.shard, at: Date.now() });
  }
}
