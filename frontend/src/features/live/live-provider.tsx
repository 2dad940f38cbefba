import { useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from "react";
import { useToken } from "@/features/auth";
import { throttle } from "@/lib/throttle";
import { FeedStore, type FeedEntry } from "./feed-store";
import { LiveConnection, liveUrl, type ConnectionState, type TaskEvent } from "./live-connection";

type Live = { connection: LiveConnection; feed: FeedStore };

const LiveContext = createContext<Live | null>(null);

/** How often, at most, a stream of events refetches the dashboard's numbers. */
const REFRESH_THROTTLE_MS = 2_000;
/** The charts, less often: a 30-day series costs several times the cards, and moves slowly. */
export const CHARTS_REFRESH_MS = 10_000;

/**
 * One live connection for the signed-in session. Events feed the activity list and,
 * throttled, refetch metrics, history and charts; after a gap (reconnect, resync, dropped
 * events) every query refetches, so nothing missed stays missing.
 */
export function LiveProvider({ children }: { children: ReactNode }) {
  const token = useToken();
  const queryClient = useQueryClient();
  const [live, setLive] = useState<Live | null>(null);

  useEffect(() => {
    if (token === null) return;
    const connection = new LiveConnection({ url: liveUrl(), token });
    const feed = new FeedStore();
    const refreshNumbers = throttle(() => {
      void queryClient.invalidateQueries({ queryKey: ["monitoring"] });
      void queryClient.invalidateQueries({ queryKey: ["queues"] });
    }, REFRESH_THROTTLE_MS);
    const refreshCharts = throttle(
      () => void queryClient.invalidateQueries({ queryKey: ["charts"] }),
      CHARTS_REFRESH_MS,
    );
    const offEvents = connection.onEvents((events) => {
      feed.add(events);
      refreshNumbers();
      refreshCharts();
    });
    const offGap = connection.onGap(() => void queryClient.invalidateQueries());
    connection.start();
    setLive({ connection, feed });
    return () => {
      offEvents();
      offGap();
      connection.stop();
      setLive(null);
    };
  }, [token, queryClient]);

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
