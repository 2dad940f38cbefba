import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "@/api/schema";
import { takeEarlyResponse } from "@/lib/early-fetch";
import { getToken, tokenAccepted, tokenRejected } from "@/lib/token-store";

export type Schemas = components["schemas"];

/** A failed API call: HTTP status plus the `{"error": ...}` message when there is one. */
export class ApiError extends Error {
  readonly status: number;
  /** Seconds from the Retry-After header (429, 503), when the server sent one. */
  readonly retryAfter: number | null;

  constructor(status: number, message: string, retryAfter: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** Turns an openapi-fetch error body (ErrorResponse, HTTPValidationError, …) into an ApiError. */
export function toApiError(response: Response, body: unknown): ApiError {
  let message = `${response.status} ${response.statusText}`.trim();
  if (body && typeof body === "object") {
    if ("error" in body && typeof body.error === "string") message = body.error;
    else if ("detail" in body && Array.isArray(body.detail)) {
      const first: unknown = body.detail[0];
      if (first && typeof first === "object" && "msg" in first && typeof first.msg === "string") {
        message = first.msg;
      }
    }
  }
  const retryAfter = Number(response.headers.get("Retry-After") ?? NaN);
  return new ApiError(response.status, message, Number.isFinite(retryAfter) ? retryAfter : null);
}

/** The body of a successful openapi-fetch call, or its failure as an ApiError. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) throw toApiError(result.response, result.error);
  return result.data;
}

const BEARER = /^Bearer\s+/i;

/**
 * Adds `Authorization: Bearer <token>` from the auth store (unless the caller set
 * its own, as the sign-in page does to check a candidate token). On a 401 for the
 * stored token, clears it (remembering why, for the sign-in page): the route guard then
 * sends the user to sign-in. Any other answer proves a token that came from a link.
 */
export const authMiddleware: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${token}`);
    }
    return request;
  },
  onResponse({ request, response }) {
    const sent = request.headers.get("Authorization")?.replace(BEARER, "");
    const stored = getToken();
    if (stored === null || sent !== stored) return response;
    if (response.status === 401) tokenRejected();
    else if (response.status !== 429) tokenAccepted(); // a 429 from the sign-in throttle proves nothing
    return response;
  },
};

export const api = createClient<paths>({
  // openapi-fetch builds a Request, which needs an absolute URL outside browsers (tests).
  baseUrl: typeof window === "undefined" ? "" : window.location.origin,
  // Look fetch up on every call (not once at import) so tests can stub globalThis.fetch.
  fetch: (request) => takeEarlyResponse(request) ?? globalThis.fetch(request),
});
api.use(authMiddleware);
