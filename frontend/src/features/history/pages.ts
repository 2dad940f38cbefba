/**
 * The page numbers a pager shows: the first, the last, and two either side of the current
 * one, with `null` for each gap: (7, 20) → [1, null, 5, 6, 7, 8, 9, null, 20].
 */
export function pageNumbers(current: number, total: number): (number | null)[] {
  const shown = new Set([1, total]);
  for (let p = current - 2; p <= current + 2; p++) if (p >= 1 && p <= total) shown.add(p);
  const sorted = [...shown].sort((a, b) => a - b);
  const result: (number | null)[] = [];
  sorted.forEach((p, i) => {
    if (i > 0 && p - sorted[i - 1] > 1) result.push(p - sorted[i - 1] === 2 ? p - 1 : null);
    result.push(p);
  });
  return result;
}
