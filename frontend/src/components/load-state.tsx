import { ApiError } from "@/lib/api-client";

/**
 * What a section shows before its first data: "Loading <what>…", or why loading failed
 * (with the HTTP status when the server answered) and a Retry button.
 */
export function LoadState({ what, error, onRetry }: { what: string; error: Error | null; onRetry: () => void }) {
  if (error === null) {
    return (
      <p className="placeholder" role="status">
        Loading {what}…
      </p>
    );
  }
  return (
    <div className="card placeholder placeholder--error" role="alert">
      <p>
        Could not load {what}
        {error instanceof ApiError ? ` (HTTP ${String(error.status)})` : ""}: {error.message}
      </p>
      <button type="button" className="button" onClick={onRetry}>
        Retry
      </button>
    </div>
  );
}
