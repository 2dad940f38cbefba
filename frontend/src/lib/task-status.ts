import type { Schemas } from "./api-client";

export type TaskStatus = Schemas["TaskStatus"];

/** One attempt's state: where a task is in its life. */
export type LifePoint = { attempt: number; status: TaskStatus };

const STAGE: Record<TaskStatus, number> = { pending: 0, running: 1, success: 2, failed: 2, cancelled: 2 };

/**
 * How far `a` is in a task's life compared with `b`: negative when earlier, 0 at the same
 * point (terminal statuses of one attempt are one point), positive when later. A later
 * attempt is later than anything of an earlier one. The one order every view of a task
 * uses (the live feed, history rows, an analysis's progress).
 */
export function compareLife(a: LifePoint, b: LifePoint): number {
  if (a.attempt !== b.attempt) return a.attempt - b.attempt;
  return STAGE[a.status] - STAGE[b.status];
}

/**
 * Whether a status of one attempt may replace another: a status never goes back. The
 * sender's `pending` and the worker's events are published by different processes and may
 * arrive in either order, so a late `pending` must not turn a running or finished attempt
 * back (a terminal status may still replace another one). A later attempt always may.
 */
export function supersedes(next: LifePoint, current: LifePoint | null | undefined): boolean {
  return current === null || current === undefined || compareLife(next, current) >= 0;
}
