import { useInfiniteQuery } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { auditKeys } from "./keys";

export type AuditItem = Schemas["AuditItem"];
export type AuditAction = NonNullable<Schemas["AuditItem"]["action"]>;

export const AUDIT_ACTIONS = [
  "retry",
  "bulk_retry",
  "cancel",
  "purge",
  "pause",
  "resume",
  "dismiss",
  "refresh",
  "token_create",
  "token_revoke",
] as const;

export type AuditActionFilter = (typeof AUDIT_ACTIONS)[number] | "";

const PAGE_SIZE = 50;

/** The audit log newest first, older pages loaded on demand; re-read every 10 s. */
export function useAudit(action: AuditActionFilter) {
  return useInfiniteQuery({
    queryKey: auditKeys.list(action),
    initialPageParam: undefined as number | undefined,
    queryFn: async ({ pageParam, signal }) => {
      const query = {
        limit: PAGE_SIZE,
        ...(pageParam === undefined ? {} : { before_id: pageParam }),
        ...(action === "" ? {} : { action }),
      };
      return unwrap(await api.GET("/api/v1/audit", { params: { query }, signal }));
    },
    getNextPageParam: (last) => last.next_before_id ?? undefined,
    refetchInterval: 10_000,
  });
}
