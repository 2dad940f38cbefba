import type { AnalysisKind } from "./api/analyses";

/*
 * The server's subject rules (backend analyses/repository.py parse_subject, github.py LOGIN),
 * checked in the browser for a quick answer. The server checks again and has the last word
 * (for instance on which local paths are allowed).
 */
const SAFE_URL = /^(https|ssh):\/\/[A-Za-z0-9._~:@%-]+(\/[A-Za-z0-9._~%/+-]*)?$/;
const SCP_LIKE = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/-]+$/;
const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;

/** U+0000 to U+001F, which the server refuses in a subject. */
function hasControlCharacter(text: string): boolean {
  return Array.from(text).some((c) => c.charCodeAt(0) < 0x20);
}

/** Why `subject` would be refused, or null when it looks acceptable. */
export function subjectError(kind: AnalysisKind, raw: string): string | null {
  const subject = raw.trim();
  if (kind === "github_user") {
    if (subject === "") return "Enter a GitHub username.";
    return LOGIN.test(subject) ? null : "A GitHub username: letters, digits and dashes, at most 39.";
  }
  if (subject === "") return "Enter a git URL (https:// or ssh://) or an absolute local path.";
  if (subject.length > 2000) return "At most 2,000 characters.";
  if (subject.startsWith("-") || subject.includes("::") || hasControlCharacter(subject)) {
    return "Not a git URL or path TaskLens accepts.";
  }
  const lowered = subject.toLowerCase();
  if (lowered.startsWith("https://") || lowered.startsWith("ssh://")) {
    const authority = subject.split("://", 2)[1].split("/", 1)[0];
    if (!SAFE_URL.test(subject) || authority.startsWith("-")) return "The URL has characters TaskLens does not accept.";
    if (lowered.startsWith("https://") && authority.includes("@")) {
      return "Credentials in the URL are refused (they would be stored).";
    }
    return null;
  }
  if (SCP_LIKE.test(subject)) return null;
  if (subject.includes("://")) return `The ${subject.split("://", 1)[0]}:// transport is refused; use https or ssh.`;
  return subject.startsWith("/") ? null : "A local path must be absolute.";
}

/** The in-app address of an analysis's page. */
export function analysisPath(kind: AnalysisKind, subject: string, period?: string, taskId?: string): string {
  const query = new URLSearchParams();
  if (period) query.set("period", period);
  if (taskId) query.set("task", taskId);
  const search = query.toString();
  return `/analyses/${kind}/${encodeURIComponent(subject.trim())}${search ? `?${search}` : ""}`;
}
