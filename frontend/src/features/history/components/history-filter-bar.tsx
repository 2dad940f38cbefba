import { Field } from "@/components/field";
import { useTaskNames } from "../api/get-task-names";
import { PAGE_SIZES, SORTS, STATUSES, type HistoryFilters, type Sort, type Status } from "../history-filters";
import { TextFilter } from "./text-filter";

/** Search, task name, status, queue, worker, date range and order; every change goes back to page 1. */
export function HistoryFilterBar({
  filters,
  onChange,
}: {
  filters: HistoryFilters;
  onChange: (patch: Partial<HistoryFilters>) => void;
}) {
  const names = useTaskNames();
  const update = (patch: Partial<HistoryFilters>) => onChange({ page: 1, ...patch });
  const rangeInvalid = filters.from !== null && filters.to !== null && filters.from > filters.to;

  return (
    <form className="filters" role="search" aria-label="History filters" onSubmit={(e) => e.preventDefault()}>
      <TextFilter
        label="Search"
        className="field field--grow"
        placeholder="Task id prefix, or text in a name, params or error"
        value={filters.q}
        onCommit={(q) => update({ q })}
      />
      <Field label="Task name">
        {(id) => (
          <select id={id} value={filters.taskName ?? ""} onChange={(e) => update({ taskName: e.target.value || null })}>
            <option value="">All tasks</option>
            {filters.taskName !== null && !names.data?.includes(filters.taskName) && (
              <option value={filters.taskName}>{filters.taskName}</option>
            )}
            {names.data?.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Status">
        {(id) => (
          <select
            id={id}
            value={filters.status ?? ""}
            onChange={(e) => update({ status: (e.target.value || null) as Status | null })}
          >
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        )}
      </Field>
      <TextFilter label="Queue" value={filters.queue} onCommit={(queue) => update({ queue })} />
      <TextFilter
        label="Worker"
        placeholder="host:pid"
        value={filters.worker}
        onCommit={(worker) => update({ worker })}
      />
      {filters.fingerprint !== null && (
        <p className="field small" data-testid="fingerprint-filter">
          Failure group <code>{filters.fingerprint}</code>{" "}
          <button
            type="button"
            className="button button--small button--ghost"
            onClick={() => update({ fingerprint: null })}
          >
            Clear
          </button>
        </p>
      )}
      <Field label="From">
        {(id) => (
          <input
            id={id}
            type="datetime-local"
            value={filters.from ?? ""}
            aria-invalid={rangeInvalid}
            onChange={(e) => update({ from: e.target.value || null })}
          />
        )}
      </Field>
      <Field label="To">
        {(id) => (
          <input
            id={id}
            type="datetime-local"
            value={filters.to ?? ""}
            aria-invalid={rangeInvalid}
            onChange={(e) => update({ to: e.target.value || null })}
          />
        )}
      </Field>
      <Field label="Order">
        {(id) => (
          <select id={id} value={filters.sort} onChange={(e) => update({ sort: e.target.value as Sort })}>
            {Object.entries(SORTS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Rows">
        {(id) => (
          <select id={id} value={filters.pageSize} onChange={(e) => update({ pageSize: Number(e.target.value) })}>
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        )}
      </Field>
      {rangeInvalid && (
        <p className="error-text field--wide" role="alert">
          “From” must be before “To”.
        </p>
      )}
    </form>
  );
}
