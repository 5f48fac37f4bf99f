// Vite build: two pages (dashboard index.html, phone teleop phone.html) into dist/, plus the API
// explorer's files in dist/api-docs/ (Swagger UI from swagger-ui-dist and our init.js, loaded by the
// server's /api/docs page). The dev server proxies the API to a running fms_server (FMS_URL,
// default http://127.0.0.1:8088) and serves /api-docs/ itself.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

const target = process.env.FMS_URL ?? 'http://127.0.0.1:8088';

/** dist/api-docs/<name> -> where it comes from. */
function apiDocsFiles(): Record<string, string> {
  const swagger = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  return {
    'swagger-ui.css': resolve(swagger, 'swagger-ui.css'),
    'swagger-ui-bundle.js': resolve(swagger, 'swagger-ui-bundle.js'),
    'swagger-ui-bundle.js.LICENSE.txt': resolve(swagger, 'swagger-ui-bundle.js.LICENSE.txt'),
    'LICENSE-swagger-ui.txt': resolve(swagger, 'LICENSE'),
    'init.js': resolve(import.meta.dirname, 'src/api-docs/init.js'),
  };
}

/** A file's content, without a trailing source map reference (the maps are not shipped). */
function apiDocsSource(path: string): string {
  return readFileSync(path, 'utf8').replace(/\n?\/[/*]# sourceMappingURL=\S+?(\s*\*\/)?\s*$/, '\n');
}

function apiDocs(): Plugin {
  return {
    name: 'fms-api-docs',
    generateBundle() {
      for (const [name, path] of Object.entries(apiDocsFiles())) {
        this.emitFile({ type: 'asset', fileName: `api-docs/${name}`, source: apiDocsSource(path) });
      }
    },
    configureServer(server) {
      const files = apiDocsFiles();
      server.middlewares.use('/api-docs/', (req, res, next) => {
        const name = (req.url ?? '').replace(/^\//, '').split('?')[0];
        const path = files[name];
        if (!path) return next();
        res.setHeader('content-type', name.endsWith('.css') ? 'text/css' : name.endsWith('.js') ? 'text/javascript' : 'text/plain');
        res.end(apiDocsSource(path));
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), apiDocs()],
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
      // '/api/' (not '/api'): /api-docs/ is served here
      '/api/': target,
      '/ws': { target, ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
