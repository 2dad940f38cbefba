import { useQueryClient, type QueryKey } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import { useToken } from "@/lib/use-token";
import { throttle } from "@/lib/throttle";
import { FEED_SIZE, FeedStore, type FeedEntry } from "./feed-store";
import { LiveConnection, liveUrl, type ConnectionState, type TaskEvent } from "./live-connection";

type Live = { connection: LiveConnection; feed: FeedStore };

const LiveContext = createContext<Live | null>(null);

/** How often, at most, a stream of events refetches the dashboard's numbers. */
const REFRESH_THROTTLE_MS = 2_000;

/**
 * One live connection for the signed-in session, opened with the newest FEED_SIZE events
 * (the backfill) so the feed is not empty on load. Events feed the activity list; features
 * refetch their own numbers on events (useRefreshOnLiveEvents); after a gap (reconnect,
 * resync, dropped events) every query refetches, so nothing missed stays missing.
 */
export function LiveProvider({ children }: { children: ReactNode }) {
  const token = useToken();
  const queryClient = useQueryClient();
  // Made at render (they open nothing), started and stopped by the effect.
  const live = useMemo<Live | null>(
    () =>
      token === null
        ? null
        : { connection: new LiveConnection({ url: liveUrl(), token, backfill: FEED_SIZE }), feed: new FeedStore() },
    [token],
  );

  useEffect(() => {
    if (live === null) return;
    const { connection, feed } = live;
    const offEvents = connection.onEvents((events) => {
      feed.add(events);
    });
    const offGap = connection.onGap(() => void queryClient.invalidateQueries());
    connection.start();
    return () => {
      offEvents();
      offGap();
      connection.stop();
    };
  }, [live, queryClient]);

  return <LiveContext.Provider value={live}>{children}</LiveContext.Provider>;
}

const noSubscribe = () => () => {};

export function useConnectionState(): ConnectionState {
  const live = useContext(LiveContext);
  return useSyncExternalStore(
    live ? (listener) => live.connection.onState(listener) : noSubscribe,
    () => live?.connection.state ?? "connecting",
  );
}

const EMPTY: readonly FeedEntry[] = [];

export function useFeed(): readonly FeedEntry[] {
  const live = useContext(LiveContext);
  return useSyncExternalStore(live ? live.feed.subscribe : noSubscribe, live ? live.feed.getSnapshot : () => EMPTY);
}

/** Calls `listener` with each batch of live events while mounted (keep it stable: useCallback). */
export function useLiveEvents(listener: (events: TaskEvent[]) => void): void {
  const live = useContext(LiveContext);
  useEffect(() => live?.connection.onEvents(listener), [live, listener]);
}

/**
 * While mounted, live events refetch the queries under `keyOf()` (at most every
 * `throttleMs`): a feature keeps its own numbers fresh without the live feature knowing its
 * keys. Pass a stable function, such as a key factory's method.
 */
export function useRefreshOnLiveEvents(keyOf: () => QueryKey, throttleMs = REFRESH_THROTTLE_MS): void {
  const live = useContext(LiveContext);
  const queryClient = useQueryClient();
  useEffect(() => {
    if (live === null) return;
    const refresh = throttle(() => void queryClient.invalidateQueries({ queryKey: keyOf() }), throttleMs);
    return live.connection.onEvents(refresh);
  }, [live, queryClient, keyOf, throttleMs]);
}
