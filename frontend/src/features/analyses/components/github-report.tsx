import { BarChart } from "@/components/charts";
import { formatCount } from "@/lib/format";
import { readGithubReport } from "../report-data";

export function GithubReport({ result }: { result: Record<string, unknown> }) {
  const report = readGithubReport(result);
  const { pullRequests: prs } = report;
  return (
    <div className="report" data-testid="github-report">
      <p>
        {report.profile.url ? <a href={report.profile.url}>{report.profile.login}</a> : report.profile.login}
        {report.profile.name && ` (${report.profile.name})`} · {formatCount(report.profile.publicRepos)} public
        repositories · {formatCount(report.profile.followers)} followers
      </p>
      <dl className="report__figures">
        {(
          [
            ["pull requests", prs.total],
            ["merged", prs.merged],
            ["open", prs.open],
            ["closed unmerged", prs.closedUnmerged],
          ] as const
        ).map(([label, value]) => (
          <div className="stat" key={label}>
            <dt>{label}</dt>
            <dd>{formatCount(value)}</dd>
          </div>
        ))}
      </dl>
      <div className="two-columns">
        <section className="card" aria-labelledby="repos-title">
          <h3 id="repos-title">Repositories contributed to</h3>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Repository</th>
                <th scope="col">Stars</th>
                <th scope="col">PRs</th>
                <th scope="col">Language</th>
              </tr>
            </thead>
            <tbody>
              {report.repositories.map((r) => (
                <tr key={r.fullName}>
                  <td>{r.url ? <a href={r.url}>{r.fullName}</a> : r.fullName}</td>
                  <td>★ {formatCount(r.stars)}</td>
                  <td>{formatCount(r.pullRequests)}</td>
                  <td>{r.language || "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <div className="card">
          {report.languages.length > 0 ? (
            <BarChart
              title="Pull requests by language"
              labels={report.languages.map(([name]) => name)}
              values={report.languages.map(([, n]) => n)}
              label="pull requests"
              horizontal
            />
          ) : (
            <p className="muted small">No languages.</p>
          )}
        </div>
      </div>
    </div>
  );
}
