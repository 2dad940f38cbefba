export { AnalysesPage } from "./components/analyses-page";
export { AnalysisPage } from "./components/analysis-page";
