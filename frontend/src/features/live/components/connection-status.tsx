import { useConnectionState } from "../live-provider";

const LABELS = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", offline: "offline" } as const;

/** Whether the live feed is current: a dot and a word, announced to screen readers. */
export function ConnectionStatus() {
  const state = useConnectionState();
  return (
    <span className={`connection connection--${state}`} role="status" aria-live="polite" data-testid="connection-state">
      <span className="connection__dot" aria-hidden="true" />
      {LABELS[state]}
    </span>
  );
}
