import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The build lands inside the Python package, which serves it (src/loopline/server/ui.py).
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../src/loopline/server/static",
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 300,
    // .vite/manifest.json: the chunk graph, from which benchmarks/ui.py sums what a view loads.
    manifest: true,
  },
  server: {
    // `npm run dev` against a `loopline server` on the default port.
    proxy: { "/api": "http://127.0.0.1:5000" },
  },
});
