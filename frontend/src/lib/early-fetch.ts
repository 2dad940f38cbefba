/**
 * Responses index.html's inline script requested before the app's code had loaded: the
 * monitoring page's slowest requests then overlap the download and start-up of the bundle.
 */
export type EarlyFetches = {
  /** The token they were sent with. */
  token: string;
  /** When they were sent (performance.now()). */
  at: number;
  /** By path and query string. */
  responses: Map<string, Promise<Response>>;
};

declare global {
  interface Window {
    __tasklensEarly?: EarlyFetches;
  }
}

/** An early response is used within the query client's staleTime of being requested. */
export const EARLY_FRESH_MS = 10_000;

/**
 * The early response for exactly this request (a GET of the same path and query, with the
 * same token), once; otherwise undefined and the request goes to the network.
 */
export function takeEarlyResponse(request: Request): Promise<Response> | undefined {
  const early = typeof window === "undefined" ? undefined : window.__tasklensEarly;
  if (early === undefined || request.method !== "GET") return undefined;
  const url = new URL(request.url);
  const key = url.pathname + url.search;
  const response = early.responses.get(key);
  if (response === undefined || url.origin !== window.location.origin) return undefined;
  early.responses.delete(key);
  const fresh = performance.now() - early.at <= EARLY_FRESH_MS;
  return fresh && request.headers.get("Authorization") === `Bearer ${early.token}` ? response : undefined;
}
