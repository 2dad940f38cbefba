/**
 * The live-events WebSocket, kept open across network failures and API restarts.
 *
 * Why a class outside React: one socket serves every component, events arrive far faster
 * than React should render (hundreds a second), and reconnection state must survive
 * re-renders. Components subscribe; they get events in batches, at most one per frame.
 */

import type { Schemas } from "@/lib/api-client";

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline";

/** One lifecycle change, as the server sends it on `WS /api/v1/ws` (generated from the contract). */
export type TaskEvent = Schemas["LiveTaskEvent"];
/** Any frame the server sends; `type` tells which. */
type ServerMessage = Schemas["LiveServerMessage"];
/** The first message: the token, and the last event id when resuming. */
type AuthMessage = Schemas["LiveAuth"];

/** Why what a client holds may be incomplete: it should refetch from the REST log. */
export type GapReason = "reconnected" | "resync" | "events_dropped";

type Options = {
  url: string;
  token: string;
  /** Backoff before reconnect attempt n (0-based), in ms. */
  backoff?: (attempt: number) => number;
  /** Consecutive failed attempts after which the state shows "offline" (retries go on). */
  offlineAfter?: number;
  /** Events to ask for on connecting with nothing to resume from: the newest the server holds. */
  backfill?: number;
};

const defaultBackoff = (attempt: number) => Math.min(10_000, 500 * 2 ** attempt) * (0.8 + Math.random() * 0.4);

const SERVER_TYPES: ReadonlySet<string> = new Set<ServerMessage["type"]>([
  "hello",
  "task_event",
  "resync",
  "events_dropped",
  "pong",
]);

/** A frame of a known type, checked only as deep as this client reads it. */
function isServerMessage(value: unknown): value is ServerMessage {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.type !== "string" || !SERVER_TYPES.has(v.type)) return false;
  return v.type !== "task_event" || (typeof v.task_name === "string" && typeof v.data === "object" && v.data !== null);
}

export class LiveConnection {
  private socket: WebSocket | null = null;
  private stateValue: ConnectionState = "connecting";
  private failures = 0;
  private everOpened = false;
  private stopped = true;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastId: string | null = null;
  private pending: TaskEvent[] = [];
  private flushScheduled = false;
  private readonly eventListeners = new Set<(events: TaskEvent[]) => void>();
  private readonly stateListeners = new Set<() => void>();
  private readonly gapListeners = new Set<(reason: GapReason) => void>();
  private readonly backoff: (attempt: number) => number;
  private readonly offlineAfter: number;

  constructor(private readonly options: Options) {
    this.backoff = options.backoff ?? defaultBackoff;
    this.offlineAfter = options.offlineAfter ?? 4;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this.reconnectNow);
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    window.removeEventListener("online", this.reconnectNow);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "bye");
  }

  onEvents(listener: (events: TaskEvent[]) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onState(listener: () => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  onGap(listener: (reason: GapReason) => void): () => void {
    this.gapListeners.add(listener);
    return () => this.gapListeners.delete(listener);
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    for (const listener of this.stateListeners) listener();
  }

  private gap(reason: GapReason): void {
    for (const listener of this.gapListeners) listener(reason);
  }

  private readonly reconnectNow = (): void => {
    if (this.stopped || this.socket !== null) return;
    clearTimeout(this.retryTimer);
    this.open();
  };

  private open(): void {
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      // The token goes in the first message, not the URL, so no access log ever holds it.
      // `since` asks the server to replay what this client missed while away; with nothing
      // to resume from, `backfill` asks for the newest events, so a feed opens on what just
      // happened (the server sends them before live ones, none twice).
      const since = this.lastId;
      const backfill = since === null && this.options.backfill ? this.options.backfill : null;
      const auth: AuthMessage = { token: this.options.token, since, backfill };
      socket.send(JSON.stringify(auth));
    };
    socket.onmessage = (message: MessageEvent) => this.receive(message.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleReconnect();
    };
  }

  private receive(data: unknown): void {
    if (typeof data !== "string") return;
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!isServerMessage(frame)) return;
    switch (frame.type) {
      case "hello": {
        const reconnected = this.everOpened;
        this.everOpened = true;
        this.failures = 0;
        this.setState("live");
        if (reconnected) this.gap("reconnected");
        break;
      }
      case "resync":
      case "events_dropped":
        this.gap(frame.type);
        break;
      case "task_event":
        this.lastId = frame.id;
        this.pending.push(frame);
        this.scheduleFlush();
        break;
      case "pong":
        break;
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.failures += 1;
    const offline = this.failures > this.offlineAfter || (typeof navigator !== "undefined" && !navigator.onLine);
    this.setState(offline ? "offline" : "reconnecting");
    this.retryTimer = setTimeout(() => this.open(), this.backoff(this.failures - 1));
  }

  /** One delivery per animation frame however many events arrived (a timer when hidden). */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const flush = () => {
      this.flushScheduled = false;
      const batch = this.pending;
      this.pending = [];
      for (const listener of this.eventListeners) listener(batch);
    };
    if (typeof requestAnimationFrame === "function" && document.visibilityState === "visible") {
      requestAnimationFrame(flush);
    } else {
      setTimeout(flush, 100);
    }
  }
}

export function liveUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/api/v1/ws`;
}
