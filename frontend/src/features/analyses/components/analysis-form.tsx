import { Field } from "@/components/field";
import { useState, type SubmitEvent } from "react";
import { useNavigate } from "react-router";
import { KINDS, PERIODS, useSubmitAnalysis, type AnalysisKind, type Period, type Priority } from "../api/analyses";
import { analysisPath, subjectError } from "../validation";

const PLACEHOLDERS: Record<AnalysisKind, string> = {
  repository: "https://github.com/owner/repo or /srv/repos/project",
  github_user: "octocat",
};

/** Start an analysis; on success go to its page, where progress shows. */
export function AnalysisForm() {
  const navigate = useNavigate();
  const submit = useSubmitAnalysis();
  const [kind, setKind] = useState<AnalysisKind>("repository");
  const [subject, setSubject] = useState("");
  const [period, setPeriod] = useState<Period>("1_year");
  const [priority, setPriority] = useState<Priority>("high");
  const [force, setForce] = useState(false);
  const [touched, setTouched] = useState(false);
  const problem = subjectError(kind, subject);
  const showProblem = touched && problem !== null;

  function onSubmit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    setTouched(true);
    if (problem !== null) return;
    submit.mutate(
      { kind, subject: subject.trim(), params: { period }, priority, force },
      { onSuccess: (accepted) => void navigate(analysisPath(kind, subject, period, accepted.task_id)) },
    );
  }

  return (
    <form className="card form" onSubmit={onSubmit} noValidate aria-labelledby="new-analysis">
      <h2 id="new-analysis">New analysis</h2>
      <div className="form__row">
        <Field label="Kind">
          {(id) => (
            <select id={id} value={kind} onChange={(e) => setKind(e.target.value as AnalysisKind)}>
              {KINDS.map((k) => (
                <option key={k.value} value={k.value}>
                  {k.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label={kind === "repository" ? "Repository" : "Username"} className="field field--grow">
          {(id) => (
            <input
              id={id}
              name="subject"
              value={subject}
              placeholder={PLACEHOLDERS[kind]}
              spellCheck={false}
              autoComplete="off"
              aria-invalid={showProblem}
              aria-describedby="subject-error"
              onChange={(e) => setSubject(e.target.value)}
              onBlur={() => setTouched(subject !== "")}
            />
          )}
        </Field>
      </div>
      {showProblem && (
        <p id="subject-error" className="error-text small" role="alert">
          {problem}
        </p>
      )}
      <div className="form__row">
        <Field label="Period">
          {(id) => (
            <select id={id} value={period} onChange={(e) => setPeriod(e.target.value as Period)}>
              {PERIODS.map((p) => (
                <option key={p.value} value={p.value}>
                  {p.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Priority">
          {(id) => (
            <select id={id} value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
              <option value="high">high</option>
              <option value="default">default</option>
              <option value="low">low</option>
            </select>
          )}
        </Field>
        <label className="checkbox">
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} />
          <span>Force (ignore a fresh cached result)</span>
        </label>
      </div>
      {submit.isError && (
        <p className="error-text" role="alert">
          {submit.error.message}
          {submit.error.retryAfter !== null && ` Try again in ${Math.ceil(submit.error.retryAfter)} s.`}
        </p>
      )}
      <div>
        <button type="submit" className="button button--primary" disabled={submit.isPending}>
          {submit.isPending ? "Starting…" : "Analyse"}
        </button>
      </div>
    </form>
  );
}
