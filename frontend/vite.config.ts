// Vite build: two pages (dashboard index.html, phone teleop phone.html) into dist/; the dev
// server proxies the API to a running fms_server (FMS_URL, default http://127.0.0.1:8088).
import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

const target = process.env.FMS_URL ?? 'http://127.0.0.1:8088';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        phone: resolve(import.meta.dirname, 'phone.html'),
      },
      output: {
        // React in its own cacheable chunk shared by both pages
        manualChunks: (id: string) => (id.includes('node_modules') ? 'vendor' : undefined),
      },
    },
  },
  server: {
    proxy: {
      '/api': target,
      '/ws': { target, ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
