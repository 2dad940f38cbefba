import { describe, expect, it, vi } from "vitest";
import { TOKEN_STORAGE_KEY, clearToken, consumeTokenFromUrl, getToken, subscribe } from "@/lib/token-store";

describe("consumeTokenFromUrl", () => {
  it("stores a ?token= and strips it from the URL, keeping the rest", () => {
    window.history.pushState(null, "", "/monitoring?time_window=6&token=abc123&x=1#cards");
    const lengthBefore = window.history.length;
    const replaceSpy = vi.spyOn(window.history, "replaceState");

    expect(consumeTokenFromUrl()).toBe(true);

    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBe("abc123");
    expect(getToken()).toBe("abc123");
    expect(window.location.pathname).toBe("/monitoring");
    expect(window.location.search).toBe("?time_window=6&x=1");
    expect(window.location.hash).toBe("#cards");
    expect(window.location.href).not.toContain("abc123");
    // Replaced, not pushed: the token is not left behind in history either.
    expect(replaceSpy).toHaveBeenCalledTimes(1);
    expect(window.history.length).toBe(lengthBefore);
  });

  it("leaves the URL and the stored token alone without the parameter", () => {
    window.localStorage.setItem(TOKEN_STORAGE_KEY, "kept");
    window.history.replaceState(null, "", "/monitoring?time_window=6");
    const replaceSpy = vi.spyOn(window.history, "replaceState");

    expect(consumeTokenFromUrl()).toBe(false);

    expect(getToken()).toBe("kept");
    expect(window.location.search).toBe("?time_window=6");
    expect(replaceSpy).not.toHaveBeenCalled();
  });

  it("strips an empty ?token= without signing in", () => {
    window.history.replaceState(null, "", "/?token=");
    expect(consumeTokenFromUrl()).toBe(false);
    expect(getToken()).toBeNull();
    expect(window.location.search).toBe("");
  });

  it("notifies subscribers when the token changes", () => {
    const listener = vi.fn();
    const unsubscribe = subscribe(listener);
    window.history.replaceState(null, "", "/?token=t1");
    consumeTokenFromUrl();
    clearToken();
    expect(listener).toHaveBeenCalledTimes(2);
    unsubscribe();
    clearToken();
    expect(listener).toHaveBeenCalledTimes(2);
  });
});
