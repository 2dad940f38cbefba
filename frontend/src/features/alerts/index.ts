export { AlertBanner } from "./components/alert-banner";
export { AlertsPage } from "./components/alerts-page";
