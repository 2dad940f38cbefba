export { useHistory, type TaskLogItem } from "./api/get-history";
export { useTaskNames } from "./api/get-task-names";
export { historyKeys } from "./api/keys";
export { HistoryTable } from "./components/history-table";
export { readFilters, type HistoryFilters, type Status } from "./history-filters";
