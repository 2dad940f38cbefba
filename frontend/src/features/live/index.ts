export { ConnectionStatus } from "./components/connection-status";
export { LiveFeed } from "./components/live-feed";
export type { ConnectionState, TaskEvent } from "./live-connection";
export { LiveProvider, useConnectionState, useFeed, useLiveEvents, useRefreshOnLiveEvents } from "./live-provider";
