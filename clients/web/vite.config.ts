import { defineConfig } from "vite";

// `make web` builds into dist/, which the gateway serves (setting gateway_static_dir).
// `npm run dev` serves the sources and passes /api to the gateway `make run` starts.
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
