/**
 * The API token, kept in localStorage so that it survives reloads, with a tiny
 * subscribe API so React (useSyncExternalStore) re-renders when it changes —
 * e.g. when the API client clears it after a 401.
 */
export const TOKEN_STORAGE_KEY = "tasklens.token";
export const TOKEN_QUERY_PARAM = "token";

type Listener = () => void;
const listeners = new Set<Listener>();

/**
 * Why the last sign-out happened, for the sign-in page to say: a `?token=` link whose token
 * the server never accepted, or a token that worked and then stopped (revoked, or the
 * server's tokens changed: the server cannot tell a revoked token from an unknown one).
 * Null after a sign-out by hand. Kept for this page's life only.
 */
export type SignOutReason = "link-rejected" | "revoked";
let lastReason: SignOutReason | null = null;
/** The stored token came from a `?token=` link and no call has been answered with it yet. */
let unconfirmedLink = false;

function notify(): void {
  for (const listener of listeners) listener();
}

export function getToken(): string | null {
  try {
    return window.localStorage.getItem(TOKEN_STORAGE_KEY);
  } catch {
    return null; // storage disabled (privacy mode): behave as signed out
  }
}

export function setToken(token: string, { fromLink = false }: { fromLink?: boolean } = {}): void {
  window.localStorage.setItem(TOKEN_STORAGE_KEY, token);
  unconfirmedLink = fromLink;
  lastReason = null;
  notify();
}

/** Sign out; `reason` is what the sign-in page will say (none after a sign-out by hand). */
export function clearToken(reason: SignOutReason | null = null): void {
  window.localStorage.removeItem(TOKEN_STORAGE_KEY);
  unconfirmedLink = false;
  lastReason = reason;
  notify();
}

/** The server refused the stored token (401): sign out, remembering why. */
export function tokenRejected(): void {
  clearToken(unconfirmedLink ? "link-rejected" : "revoked");
}

/** The server answered a call made with the stored token: a link's token is now proven. */
export function tokenAccepted(): void {
  unconfirmedLink = false;
}

export function signOutReason(): SignOutReason | null {
  return lastReason;
}

export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  // Another tab signing in or out.
  const onStorage = (event: StorageEvent) => {
    if (event.key === TOKEN_STORAGE_KEY || event.key === null) listener();
  };
  window.addEventListener("storage", onStorage);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("storage", onStorage);
  };
}

/**
 * Sign in from a `?token=...` link: store the token and remove the parameter
 * from the address bar (and history) with history.replaceState, keeping every
 * other parameter and the hash. Returns whether a token was taken.
 */
export function consumeTokenFromUrl(): boolean {
  const url = new URL(window.location.href);
  const token = url.searchParams.get(TOKEN_QUERY_PARAM);
  if (token === null) return false;
  url.searchParams.delete(TOKEN_QUERY_PARAM);
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  const trimmed = token.trim();
  if (trimmed === "") return false;
  setToken(trimmed, { fromLink: true });
  return true;
}
