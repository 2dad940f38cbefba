/// <reference types="vitest/config" />
import { fileURLToPath, URL } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The FastAPI backend (uvicorn) during development.
const BACKEND = "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) },
  },
  server: {
    proxy: {
      // REST and the live-events WebSocket both live under /api.
      "/api": { target: BACKEND, ws: true },
      "/health": { target: BACKEND },
    },
  },
  build: {
    // FastAPI serves frontend/dist: /assets/* statically, index.html for other non-API paths.
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}", "eslint.config.test.ts"],
    setupFiles: ["./src/testing/setup.tsx"],
    restoreMocks: true,
    unstubGlobals: true,
  },
});
