import { defineConfig } from "vite";

// Everything is bundled: the console works without internet (no CDN).
export default defineConfig({
  build: { outDir: "dist", assetsDir: "assets", emptyOutDir: true, sourcemap: false },
});
