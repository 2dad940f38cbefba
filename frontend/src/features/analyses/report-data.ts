/*
 * Readers for the two report shapes (backend analyses/repository.py and github.py). Results
 * are stored JSON of any age, so each field is checked and a missing one becomes empty
 * rather than breaking the page.
 */

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const list = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObject) : []);
const counts = (v: unknown): [string, number][] =>
  isObject(v)
    ? Object.entries(v)
        .map(([k, n]) => [k, num(n)] as [string, number])
        .sort((a, b) => b[1] - a[1])
    : [];

export type RepositoryReport = {
  commitCount: number;
  contributors: { author: string; commits: number }[];
  commitsPerWeek: { week: string; commits: number }[];
  languages: [string, number][];
  technologies: string[];
  plan: {
    total: number;
    done: number;
    percentage: number | null;
    files: { path: string; total: number; done: number; percentage: number }[];
    /** Every markdown file read for checkboxes (capped); `filesReadCount` counts them all. */
    filesRead: string[];
    filesReadCount: number;
  };
};

export function readRepositoryReport(result: Json): RepositoryReport {
  const plan = isObject(result.plan_progress) ? result.plan_progress : {};
  return {
    commitCount: num(result.commit_count),
    contributors: list(result.top_contributors).map((c) => ({ author: str(c.author), commits: num(c.commits) })),
    commitsPerWeek: list(result.commits_per_week).map((w) => ({ week: str(w.week), commits: num(w.commits) })),
    languages: counts(result.languages),
    technologies: Array.isArray(result.technologies) ? result.technologies.map(str).filter(Boolean) : [],
    plan: {
      total: num(plan.total),
      done: num(plan.done),
      percentage: typeof plan.percentage === "number" ? plan.percentage : null,
      files: list(plan.files).map((f) => ({
        path: str(f.path),
        total: num(f.total),
        done: num(f.done),
        percentage: num(f.percentage),
      })),
      filesRead: Array.isArray(plan.files_read) ? plan.files_read.map(str) : [],
      filesReadCount: num(plan.files_read_count),
    },
  };
}

export type GithubReport = {
  profile: { login: string; name: string; url: string; publicRepos: number; followers: number };
  pullRequests: { total: number; merged: number; open: number; closedUnmerged: number };
  repositories: { fullName: string; stars: number; language: string; pullRequests: number; url: string }[];
  languages: [string, number][];
};

export function readGithubReport(result: Json): GithubReport {
  const profile = isObject(result.profile) ? result.profile : {};
  const prs = isObject(result.pull_requests) ? result.pull_requests : {};
  return {
    profile: {
      login: str(profile.login),
      name: str(profile.name),
      url: str(profile.html_url),
      publicRepos: num(profile.public_repos),
      followers: num(profile.followers),
    },
    pullRequests: {
      total: num(prs.total),
      merged: num(prs.merged),
      open: num(prs.open),
      closedUnmerged: num(prs.closed_unmerged),
    },
    repositories: list(result.repositories).map((r) => ({
      fullName: str(r.full_name),
      stars: num(r.stars),
      language: str(r.language),
      pullRequests: num(r.pull_requests),
      url: str(r.url),
    })),
    languages: counts(result.languages),
  };
}
