export { FailuresPage } from "./components/failures-page";
