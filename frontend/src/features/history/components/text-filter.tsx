import { useCallback, useEffect, useRef, useState } from "react";
import { Field } from "@/components/field";
import { MAX_SEARCH } from "../history-filters";

/** How long typing pauses before the filter applies: one request per search, not per key. */
export const TYPING_PAUSE_MS = 400;

/**
 * A free-text filter that applies when typing pauses (or on Enter), and follows the URL
 * when it changes by other means (back button, a link).
 */
export function TextFilter({
  label,
  value,
  placeholder,
  className,
  onCommit,
}: {
  label: string;
  value: string | null;
  placeholder?: string;
  className?: string;
  onCommit: (value: string | null) => void;
}) {
  const [text, setText] = useState(value ?? "");
  const committed = useRef(value ?? "");
  useEffect(() => {
    if ((value ?? "") !== committed.current) {
      committed.current = value ?? "";
      setText(value ?? "");
    }
  }, [value]);

  // The latest onCommit in a ref, so the timer below restarts only when the text changes.
  const latestOnCommit = useRef(onCommit);
  useEffect(() => {
    latestOnCommit.current = onCommit;
  }, [onCommit]);
  const commit = useCallback((next: string) => {
    const trimmed = next.trim();
    if (trimmed === committed.current) return;
    committed.current = trimmed;
    latestOnCommit.current(trimmed || null);
  }, []);
  useEffect(() => {
    const timer = setTimeout(() => commit(text), TYPING_PAUSE_MS);
    return () => clearTimeout(timer);
  }, [text, commit]);

  return (
    <Field label={label} className={className}>
      {(id) => (
        <input
          id={id}
          type="search"
          value={text}
          maxLength={MAX_SEARCH}
          placeholder={placeholder}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter") commit(text);
          }}
        />
      )}
    </Field>
  );
}
