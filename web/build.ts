/**
 * `deno task playground`: builds the static site into `web/dist/` (`deno bundle --platform browser` of
 * web/main.ts, plus index.html, style.css and assets/) and serves it on localhost with `Deno.serve`, printing the
 * URL. `--build-only` stops after the build; `--port N` (default 8000; 0 picks a free one). The built folder is
 * self-contained: copy it to any static host.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

/** The folder of the web sources. */
export const WEB_DIR: string = dirname(fileURLToPath(import.meta.url));
/** Where the site is built by default. */
export const DIST_DIR: string = join(WEB_DIR, "dist");

/** Builds the site into `out` (created or refreshed); returns the bundle's size in bytes. */
export async function buildPlayground(out: string = DIST_DIR): Promise<{ bundleBytes: number }> {
  await Deno.mkdir(join(out, "assets"), { recursive: true });
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--minify",
      "--sourcemap",
      "linked",
      "-o",
      join(out, "app.js"),
      join(WEB_DIR, "main.ts"),
    ],
    cwd: dirname(WEB_DIR),
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  if (!r.success) {
    throw new Error(`deno bundle failed:\n${new TextDecoder().decode(r.stderr)}${new TextDecoder().decode(r.stdout)}`);
  }
  for (const f of ["index.html", "style.css"]) await Deno.copyFile(join(WEB_DIR, f), join(out, f));
  for (const e of Deno.readDirSync(join(WEB_DIR, "assets"))) {
    if (e.isFile) await Deno.copyFile(join(WEB_DIR, "assets", e.name), join(out, "assets", e.name));
  }
  return { bundleBytes: (await Deno.stat(join(out, "app.js"))).size };
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".png": "image/png",
  ".safetensors": "application/octet-stream",
};

/** Serves `root` as a static site on `port` (0: any free port) until `signal` aborts. */
export function servePlayground(
  root: string,
  opts: { port?: number; signal?: AbortSignal; onListen?: (url: string) => void } = {},
): Deno.HttpServer {
  return Deno.serve({
    port: opts.port ?? 8000,
    hostname: "127.0.0.1",
    signal: opts.signal,
    onListen: ({ port }) => opts.onListen?.(`http://127.0.0.1:${port}/`),
  }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    const rel = normalize(path === "/" ? "/index.html" : path);
    if (rel.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(join(root, rel));
      return new Response(body, {
        headers: { "content-type": TYPES[extname(rel)] ?? "application/octet-stream", "cache-control": "no-cache" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      "build-only": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("usage: deno task playground [--port N (default 8000; 0: any free port)] [--build-only]");
    Deno.exit(0);
  }
  const t0 = performance.now();
  const { bundleBytes } = await buildPlayground();
  console.log(
    `built ${DIST_DIR} in ${((performance.now() - t0) / 1000).toFixed(1)} s (app.js ${
      (bundleBytes / 1024).toFixed(0)
    } KiB)`,
  );
  if (!values["build-only"]) {
    servePlayground(DIST_DIR, {
      port: Number(values.port),
      onListen: (url) => console.log(`playground: ${url}  (Ctrl-C stops)`),
    });
  }
}
