import { BarChart } from "@/components/charts";
import { DataTable, type Column } from "@/components/data-table";
import { formatCount, formatCountOf } from "@/lib/format";
import { readRepositoryReport } from "../report-data";

type Contributor = ReturnType<typeof readRepositoryReport>["contributors"][number];

const CONTRIBUTOR_COLUMNS: Column<Contributor>[] = [
  { header: "Author", cell: (c) => c.author },
  { header: "Commits", cell: (c) => formatCount(c.commits) },
];

export function RepositoryReport({ result }: { result: Record<string, unknown> }) {
  const report = readRepositoryReport(result);
  const languages = report.languages.slice(0, 12);
  return (
    <div className="report" data-testid="repository-report">
      <dl className="report__figures">
        <div className="stat">
          <dt>commits</dt>
          <dd>{formatCount(report.commitCount)}</dd>
        </div>
        <div className="stat">
          <dt>contributors</dt>
          <dd>{formatCount(report.contributors.length)}</dd>
        </div>
        <div className="stat">
          <dt>plan progress</dt>
          <dd>{report.plan.percentage === null ? "—" : `${report.plan.percentage}%`}</dd>
        </div>
      </dl>
      <div className="two-columns">
        <div className="card">
          {languages.length > 0 ? (
            <BarChart
              title="Lines of code by language"
              labels={languages.map(([name]) => name)}
              values={languages.map(([, lines]) => lines)}
              label="lines"
              horizontal
            />
          ) : (
            <p className="muted small">No source files recognised.</p>
          )}
        </div>
        <div className="card">
          {report.commitsPerWeek.length > 0 ? (
            <BarChart
              title="Commits per week"
              labels={report.commitsPerWeek.map((w) => w.week)}
              values={report.commitsPerWeek.map((w) => w.commits)}
              label="commits"
              color="--good"
            />
          ) : (
            <p className="muted small">No commits in this period.</p>
          )}
        </div>
      </div>
      <div className="two-columns">
        <section className="card" aria-labelledby="contributors-title">
          <h3 id="contributors-title">Top contributors</h3>
          <DataTable
            columns={CONTRIBUTOR_COLUMNS}
            rows={report.contributors}
            rowKey={(c) => c.author}
            empty="No contributors in this period."
          />
        </section>
        <section className="card" aria-labelledby="tech-title">
          <h3 id="tech-title">Technologies</h3>
          {report.technologies.length === 0 ? (
            <p className="muted small">None detected.</p>
          ) : (
            <ul className="chips">
              {report.technologies.map((t) => (
                <li key={t} className="badge">
                  {t}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <section className="card" aria-labelledby="plan-title">
        <h3 id="plan-title">Plan progress</h3>
        {report.plan.files.length === 0 ? (
          <p className="muted small">No markdown task lists found.</p>
        ) : (
          <ul className="plan">
            {report.plan.files.map((f) => (
              <li key={f.path}>
                <div className="plan__label">
                  <code>{f.path}</code>
                  <span className="muted small">
                    {f.done} / {f.total} ({f.percentage}%)
                  </span>
                </div>
                <progress max={100} value={f.percentage} aria-label={`${f.path} plan progress`} />
              </li>
            ))}
          </ul>
        )}
        {report.plan.filesReadCount > 0 && (
          <details className="small" data-testid="plan-files-read">
            <summary>Checkboxes read from {formatCountOf(report.plan.filesReadCount, "markdown file")}</summary>
            <ul>
              {report.plan.filesRead.map((path) => (
                <li key={path}>
                  <code>{path}</code>
                </li>
              ))}
              {report.plan.filesReadCount > report.plan.filesRead.length && (
                <li className="muted">and {report.plan.filesReadCount - report.plan.filesRead.length} more</li>
              )}
            </ul>
          </details>
        )}
      </section>
    </div>
  );
}
