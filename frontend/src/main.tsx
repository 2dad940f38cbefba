import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app";
import { preloadCharts } from "./components/charts";
import { consumeTokenFromUrl } from "./features/auth";
import "./index.css";

// A `?token=...` link signs in, then the token is removed from the address bar.
consumeTokenFromUrl();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
preloadCharts();
