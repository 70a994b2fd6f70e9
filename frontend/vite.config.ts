import { defineConfig } from "vite";

// Built into the Python package; relative URLs so the app works under any mount path.
export default defineConfig({
  base: "./",
  build: {
    outDir: "../src/conveyor/web/static/dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // No inline scripts or styles: everything is a file (the CSP allows 'self' only).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
