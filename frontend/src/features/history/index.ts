export { HistoryTable } from "./components/history-table";
