import type { ReactNode } from "react";

/** One label and its value in a `details__meta` list; "—" when there is no value. */
export function MetaRow({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children ?? "—"}</dd>
    </div>
  );
}
