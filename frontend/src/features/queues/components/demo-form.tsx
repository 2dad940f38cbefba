import { Field } from "@/components/field";
import { useState, type SubmitEvent } from "react";
import { useRunDemo, type DemoRequest } from "../api/queues";

const TASKS = ["demo.quick", "demo.slow", "demo.flaky", "demo.noop"] as const;
type DemoTask = (typeof TASKS)[number];

export function DemoForm() {
  const run = useRunDemo();
  const [task, setTask] = useState<DemoTask>("demo.quick");
  const [count, setCount] = useState("5");
  const [priority, setPriority] = useState<DemoRequest["priority"]>("default");
  const n = Number(count);
  const countError = Number.isInteger(n) && n >= 1 && n <= 1000 ? null : "A whole number from 1 to 1,000.";

  function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    if (countError === null) run.mutate({ task, count: n, priority });
  }

  return (
    <form className="card form form--inline" onSubmit={submit} aria-labelledby="demo-title" noValidate>
      <h2 id="demo-title">Run demo tasks</h2>
      <Field label="Task">
        {(id) => (
          <select id={id} value={task} onChange={(e) => setTask(e.target.value as DemoTask)}>
            {TASKS.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Count">
        {(id) => (
          <input
            id={id}
            type="number"
            min={1}
            max={1000}
            value={count}
            aria-invalid={countError !== null}
            aria-describedby="demo-count-error"
            onChange={(e) => setCount(e.target.value)}
          />
        )}
      </Field>
      <Field label="Priority">
        {(id) => (
          <select id={id} value={priority} onChange={(e) => setPriority(e.target.value as DemoRequest["priority"])}>
            <option value="high">high</option>
            <option value="default">default</option>
            <option value="low">low</option>
          </select>
        )}
      </Field>
      <button type="submit" className="button button--primary" disabled={run.isPending || countError !== null}>
        Enqueue
      </button>
      {countError && (
        <p id="demo-count-error" className="error-text small field--wide">
          {countError}
        </p>
      )}
      {run.isSuccess && (
        <p className="muted small field--wide" role="status">
          Enqueued {run.data.enqueued} task{run.data.enqueued === 1 ? "" : "s"}.
        </p>
      )}
      {run.isError && (
        <p className="error-text small field--wide" role="alert">
          {run.error.message}
        </p>
      )}
    </form>
  );
}
