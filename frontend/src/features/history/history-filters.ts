/**
 * The history view's filters and page, kept in the URL so a view can be shared and the
 * back button walks through it. Parsing is forgiving: anything invalid falls back.
 */

export const STATUSES = ["pending", "running", "success", "failed", "cancelled"] as const;
export type Status = (typeof STATUSES)[number];
export const PAGE_SIZES = [25, 50, 100] as const;
/** The API's orders; a leading "-" is the largest (newest, longest) first. */
export const SORTS = {
  "-created": "Newest first",
  created: "Oldest first",
  "-started": "Started, latest first",
  started: "Started, earliest first",
  "-duration": "Longest first",
  duration: "Shortest first",
} as const;
export type Sort = keyof typeof SORTS;
export const DEFAULT_SORT: Sort = "-created";
/** The API refuses longer searches. */
export const MAX_SEARCH = 200;

export type HistoryFilters = {
  taskName: string | null;
  status: Status | null;
  /** datetime-local values (browser time zone), as typed in the inputs. */
  from: string | null;
  to: string | null;
  /** Task id prefix, or text in a task name, params or error message. */
  q: string | null;
  queue: string | null;
  worker: string | null;
  /** A failure group's fingerprint (the /failures page links here with it). */
  fingerprint: string | null;
  /** Leave out tasks dismissed from the failure views ("recently failed"). */
  hideDismissed: boolean;
  sort: Sort;
  page: number;
  pageSize: number;
};

const FINGERPRINT = /^[0-9a-f]{16}$/;
const DATETIME_LOCAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/;

function positiveInt(value: string | null, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? n : fallback;
}

export function readFilters(params: URLSearchParams): HistoryFilters {
  const status = params.get("status");
  const from = params.get("from");
  const to = params.get("to");
  const pageSize = positiveInt(params.get("page_size"), 25);
  const sort = params.get("sort");
  const text = (key: string) => params.get(key)?.trim().slice(0, MAX_SEARCH) || null;
  const fingerprint = params.get("fingerprint");
  return {
    taskName: params.get("task_name") || null,
    status: STATUSES.includes(status as Status) ? (status as Status) : null,
    from: from && DATETIME_LOCAL.test(from) ? from : null,
    to: to && DATETIME_LOCAL.test(to) ? to : null,
    q: text("q"),
    queue: text("queue"),
    worker: text("worker"),
    fingerprint: fingerprint !== null && FINGERPRINT.test(fingerprint) ? fingerprint : null,
    hideDismissed: params.get("hide_dismissed") === "true",
    sort: sort !== null && sort in SORTS ? (sort as Sort) : DEFAULT_SORT,
    page: positiveInt(params.get("page"), 1),
    pageSize: (PAGE_SIZES as readonly number[]).includes(pageSize) ? pageSize : 25,
  };
}

/** Writes the filters into `params`, keeping unrelated parameters (such as the time window). */
export function writeFilters(params: URLSearchParams, filters: HistoryFilters): URLSearchParams {
  const next = new URLSearchParams(params);
  const set = (key: string, value: string | null, omitted?: string) => {
    if (value === null || value === "" || value === omitted) next.delete(key);
    else next.set(key, value);
  };
  set("task_name", filters.taskName);
  set("status", filters.status);
  set("from", filters.from);
  set("to", filters.to);
  set("q", filters.q);
  set("queue", filters.queue);
  set("worker", filters.worker);
  set("fingerprint", filters.fingerprint);
  set("hide_dismissed", filters.hideDismissed ? "true" : null);
  set("sort", filters.sort, DEFAULT_SORT);
  set("page", String(filters.page), "1");
  set("page_size", String(filters.pageSize), "25");
  return next;
}

/** A datetime-local value as an ISO instant for the API (it is in the browser's zone). */
export function toInstant(local: string | null): string | undefined {
  if (local === null) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
