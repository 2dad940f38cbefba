/**
 * The API token, kept in localStorage so that it survives reloads, with a tiny
 * subscribe API so React (useSyncExternalStore) re-renders when it changes —
 * e.g. when the API client clears it after a 401.
 */
export const TOKEN_STORAGE_KEY = "tasklens.token";
export const TOKEN_QUERY_PARAM = "token";

type Listener = () => void;
const listeners = new Set<Listener>();

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

export function setToken(token: string): void {
  window.localStorage.setItem(TOKEN_STORAGE_KEY, token);
  notify();
}

export function clearToken(): void {
  window.localStorage.removeItem(TOKEN_STORAGE_KEY);
  notify();
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
  setToken(trimmed);
  return true;
}
