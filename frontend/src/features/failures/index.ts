export { FailuresPage } from "./components/failures-page";
export { BulkFailureAction } from "./components/bulk-failure-action";
