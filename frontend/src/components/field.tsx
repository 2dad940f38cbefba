import { useId, type ReactNode } from "react";

/**
 * A label above its control, tied by id rather than by nesting, so the control's
 * accessible name is the label alone (a nested select would add its options to it).
 */
export function Field({
  label,
  className = "field",
  children,
}: {
  label: string;
  className?: string;
  children: (id: string) => ReactNode;
}) {
  const id = useId();
  return (
    <div className={className}>
      <label htmlFor={id}>{label}</label>
      {children(id)}
    </div>
  );
}
