import { BarChart } from "@/components/charts";
import { DataTable, type Column } from "@/components/data-table";
import { formatCount, formatCountOf } from "@/lib/format";
import { readGithubReport } from "../report-data";

type Repository = ReturnType<typeof readGithubReport>["repositories"][number];

const REPOSITORY_COLUMNS: Column<Repository>[] = [
  { header: "Repository", cell: (r) => (r.url ? <a href={r.url}>{r.fullName}</a> : r.fullName) },
  { header: "Stars", cell: (r) => `★ ${formatCount(r.stars)}` },
  { header: "PRs", cell: (r) => formatCount(r.pullRequests) },
  { header: "Language", cell: (r) => r.language || "—" },
];

export function GithubReport({ result }: { result: Record<string, unknown> }) {
  const report = readGithubReport(result);
  const { pullRequests: prs } = report;
  return (
    <div className="report" data-testid="github-report">
      <p>
        {report.profile.url ? <a href={report.profile.url}>{report.profile.login}</a> : report.profile.login}
        {report.profile.name && ` (${report.profile.name})`} ·{" "}
        {formatCountOf(report.profile.publicRepos, "public repository", "public repositories")} ·{" "}
        {formatCountOf(report.profile.followers, "follower")}
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
          <DataTable
            columns={REPOSITORY_COLUMNS}
            rows={report.repositories}
            rowKey={(r) => r.fullName}
            empty="None in this period."
          />
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
