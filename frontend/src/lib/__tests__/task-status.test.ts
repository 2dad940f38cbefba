import { describe, expect, it } from "vitest";
import { compareLife, supersedes, type LifePoint } from "../task-status";

const at = (attempt: number, status: LifePoint["status"]): LifePoint => ({ attempt, status });

describe("a task's life order", () => {
  it("goes pending, running, then one finished point, attempt after attempt", () => {
    const life = [at(1, "pending"), at(1, "running"), at(1, "failed"), at(2, "pending"), at(2, "success")];
    for (let i = 1; i < life.length; i++) {
      expect(compareLife(life[i], life[i - 1])).toBeGreaterThan(0);
      expect(compareLife(life[i - 1], life[i])).toBeLessThan(0);
    }
    expect(compareLife(at(1, "success"), at(1, "cancelled"))).toBe(0);
    expect(compareLife(at(3, "pending"), at(2, "success"))).toBeGreaterThan(0);
  });

  it("lets a state replace another only when it is not earlier", () => {
    expect(supersedes(at(1, "pending"), at(1, "running"))).toBe(false); // a late pending
    expect(supersedes(at(1, "running"), at(1, "pending"))).toBe(true);
    expect(supersedes(at(1, "cancelled"), at(1, "failed"))).toBe(true); // terminal over terminal
    expect(supersedes(at(1, "success"), at(2, "pending"))).toBe(false); // an older attempt
    expect(supersedes(at(1, "pending"), null)).toBe(true);
  });
});
