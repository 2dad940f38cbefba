import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app";
import { preloadCharts } from "./components/charts";
import { consumeTokenFromUrl } from "./lib/token-store";
import "./index.css";

// A `?token=...` link signs in, then the token is removed from the address bar.
consumeTokenFromUrl();

const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root element");
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
preloadCharts();
