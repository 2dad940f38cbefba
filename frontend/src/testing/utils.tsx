import { QueryClient } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { vi } from "vitest";
import { App } from "@/app";
import type { Schemas } from "@/lib/api-client";

export function testQueryClient(): QueryClient {
  return new QueryClient({ defaultOptions: { queries: { retry: false, refetchInterval: false } } });
}

/** Render the whole app (router included) at `path`. */
export function renderApp(path: string) {
  window.history.replaceState(null, "", path);
  return render(<App queryClient={testQueryClient()} />);
}

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

type Route = (url: URL, request: Request) => Response | undefined;

/** Stub globalThis.fetch with a router; records every Request it sees. */
export function stubFetch(route: Route) {
  const requests: Request[] = [];
  const fetchMock = vi.fn((input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(input, init);
    requests.push(request);
    const response = route(new URL(request.url), request);
    return Promise.resolve(response ?? jsonResponse({ error: `unexpected ${request.method} ${request.url}` }, 404));
  });
  vi.stubGlobal("fetch", fetchMock);
  return { fetchMock, requests };
}

let eventSeq = 0;

/** A task_event frame as the server sends it (an id made up when none is given). */
export function taskEvent(
  taskName: string,
  status: Schemas["TaskStatus"],
  data: Partial<Schemas["LiveTaskEventData"]> = {},
  id?: string,
): Schemas["LiveTaskEvent"] {
  return {
    type: "task_event",
    id: id ?? `test-${String(++eventSeq).padStart(6, "0")}`,
    task_name: taskName,
    status,
    timestamp: "2026-11-23T10:15:30Z",
    data: {
      task_id: "t-1",
      attempt: 1,
      duration_ms: null,
      error_message: null,
      params: {},
      progress: null,
      progress_message: null,
      queue: "tasklens",
      worker: null,
      ...data,
    },
  };
}
