import type { Schemas } from "@/lib/api-client";

type AnalysisKind = Schemas["AnalysisKind"];
type Period = Schemas["Period"];

/** The analyses feature's query keys: every key it uses comes from here. */
export const analysesKeys = {
  all: () => ["analyses"] as const,
  recent: () => [...analysesKeys.all(), "recent"] as const,
  detail: (kind: AnalysisKind, subject: string, period: Period | undefined) =>
    [...analysesKeys.all(), "detail", kind, subject, period] as const,
  /** Under the analysis's key: a refresh or a finished run refetches it with the report. */
  refreshes: (kind: AnalysisKind, subject: string, period: Period | undefined) =>
    [...analysesKeys.detail(kind, subject, period), "refreshes"] as const,
};
