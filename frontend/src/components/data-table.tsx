import { Fragment, type ReactNode } from "react";
import { PHONE_QUERY, useMediaQuery } from "@/lib/use-media-query";

export type Column<T> = {
  /** The column's heading; on a phone, the label of the value in each card. */
  header: string;
  cell: (row: T) => ReactNode;
  className?: string;
  /** A tooltip for the cell (a clipped error message). */
  title?: (row: T) => string | undefined;
};

/** What a row opens below itself (its id names it for the toggle's aria-controls). */
export type RowDetails = { id: string; content: ReactNode };

export type DataTableProps<T> = {
  columns: Column<T>[];
  rows: readonly T[];
  rowKey: (row: T) => string | number;
  /** Shown in place of the rows when there are none. */
  empty?: ReactNode;
  /** `data-testid` of each row (or card). */
  rowTestId?: string;
  /** The row's opened details, or null while closed. */
  details?: (row: T) => RowDetails | null;
  busy?: boolean;
  label?: string;
};

/**
 * The dashboard's table: a plain table on a wide screen, and on a phone (≤ 640 px) one card
 * per row, the first column as its title and the others as label–value pairs, so nothing
 * scrolls sideways.
 */
export function DataTable<T>(props: DataTableProps<T>) {
  const phone = useMediaQuery(PHONE_QUERY);
  return phone ? <Cards {...props} /> : <Table {...props} />;
}

function Table<T>({ columns, rows, rowKey, empty, rowTestId, details, busy, label }: DataTableProps<T>) {
  return (
    <div className="table-scroll">
      <table className="table" aria-busy={busy} aria-label={label}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.header} scope="col">
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && empty !== undefined && (
            <tr>
              <td colSpan={columns.length} className="muted">
                {empty}
              </td>
            </tr>
          )}
          {rows.map((row) => {
            const open = details?.(row) ?? null;
            return (
              <Fragment key={rowKey(row)}>
                <tr className="table__row" data-testid={rowTestId}>
                  {columns.map((c) => (
                    <td key={c.header} className={c.className} title={c.title?.(row)}>
                      {c.cell(row)}
                    </td>
                  ))}
                </tr>
                {open && (
                  <tr id={open.id} className="table__details">
                    <td colSpan={columns.length}>{open.content}</td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Cards<T>({ columns, rows, rowKey, empty, rowTestId, details, busy, label }: DataTableProps<T>) {
  const [first, ...rest] = columns;
  if (rows.length === 0) return empty === undefined ? null : <p className="muted small">{empty}</p>;
  return (
    <ul className="data-cards" aria-busy={busy} aria-label={label}>
      {rows.map((row) => {
        const open = details?.(row) ?? null;
        return (
          <li key={rowKey(row)} className="data-card" data-testid={rowTestId}>
            <div className="data-card__title">{first.cell(row)}</div>
            <dl className="data-card__fields">
              {rest.map((c) => (
                <div key={c.header} className="data-card__field">
                  <dt>{c.header}</dt>
                  <dd className={c.className} title={c.title?.(row)}>
                    {c.cell(row)}
                  </dd>
                </div>
              ))}
            </dl>
            {open && (
              <div id={open.id} className="data-card__details">
                {open.content}
              </div>
            )}
          </li>
        );
      })}
    </ul>
  );
}
