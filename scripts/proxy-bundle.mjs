// The sidecar's prebuilt bundle: esbuild bundles `tsmesh proxy` (src/cli/proxy-entry.ts, packages included) into
// dist/tsmesh-proxy.mjs, whose first line lists every input file with its size, mtime and hash; bin/tsmesh runs the
// bundle only while every input is unchanged, so an edited source is never silently ignored. Run directly (npm ci's
// install script, `npm run build`) it builds: a failed build warns and exits 0 (the sidecar then runs from the
// sources through tsx) unless TSMESH_BUNDLE_REQUIRED=1.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where the bundle is written (the repository's dist/, ignored by git). */
export const PROXY_BUNDLE = join(ROOT, 'dist', 'tsmesh-proxy.mjs');
const ENTRY = 'src/cli/proxy-entry.ts';
const HEADER = '// tsmesh-proxy-bundle ';
/** Files that shape the output without being bundled: this script (the build options), the TypeScript settings, and
 * the module that picks the sidecar's protos (run here; its result is written into the bundle). */
const EXTRA_INPUTS = ['scripts/proxy-bundle.mjs', 'tsconfig.json', 'src/xds/proto-descriptor.ts'];
const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' };

const hash = (bytes) => createHash('sha256').update(bytes).digest('base64url').slice(0, 22);
const toPosix = (p) => p.split(sep).join('/');
const oneLine = (err) => (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');

/** The manifest on the bundle's first line, or undefined when there is no bundle or the line is not one. */
function readManifest(file) {
  let fd;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const chunks = [];
    const buf = Buffer.alloc(64 * 1024);
    for (let total = 0; total < 4 * 1024 * 1024;) {
      const n = readSync(fd, buf, 0, buf.length, total);
      if (n === 0) break;
      const nl = buf.subarray(0, n).indexOf(10);
      chunks.push(Buffer.from(buf.subarray(0, nl >= 0 ? nl : n)));
      if (nl >= 0) break;
      total += n;
    }
    const line = Buffer.concat(chunks).toString('utf8');
    if (!line.startsWith(HEADER)) return undefined;
    const m = JSON.parse(line.slice(HEADER.length));
    return m && m.format === 1 && Array.isArray(m.inputs) ? m : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * @typedef {object} BundleOptions Where things are; the defaults are tsmesh's own (tests bundle small programs).
 * @property {string} [root] the directory input paths are relative to
 * @property {string} [entry] the entry module, relative to root
 * @property {string} [out] the bundle's path
 * @property {string[]} [extraInputs] files that shape the output without being bundled, relative to root
 * @property {boolean} [protos] write the sidecar's precompiled Envoy protos in (default: for tsmesh's own bundle)
 */

/** @param {BundleOptions} o */
const settings = (o = {}) => ({ root: o.root ?? ROOT, entry: o.entry ?? ENTRY, out: o.out ?? PROXY_BUNDLE, extraInputs: o.extraInputs ?? EXTRA_INPUTS, protos: o.protos ?? o.root === undefined });

/**
 * The sidecar's Envoy protos as a descriptor (src/xds/proto-descriptor.ts, run through tsx) and the .proto files it
 * was made from: the bundle loads it instead of parsing about a hundred .proto files at start.
 */
async function sidecarProtos(root) {
  const { tsImport } = await import('tsx/esm/api');
  const load = (p) => tsImport(pathToFileURL(join(root, p)).href, import.meta.url);
  const [{ protos, PROTO_FILES }, { sidecarDescriptor }] = await Promise.all([load('src/xds/protos.ts'), load('src/xds/proto-descriptor.ts')]);
  return sidecarDescriptor(protos().root, PROTO_FILES);
}

/**
 * Whether the bundle was built from the files as they are now: every input has the size and mtime it had (or, when
 * only its mtime moved, the same content). Returns the bundle's path, or why it cannot be used. Never throws.
 * @param {BundleOptions} [opts]
 * @returns {{ current: true, path: string } | { current: false, reason: string }}
 */
export function checkProxyBundle(opts) {
  const { root, out } = settings(opts);
  const name = toPosix(relative(root, out));
  const m = readManifest(out);
  if (!m) return { current: false, reason: `no prebuilt bundle ${name} (npm ci or \`npm run build\` makes it)` };
  for (const [path, size, mtimeMs, digest] of m.inputs) {
    const file = join(root, path);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st) return { current: false, reason: `${path}, bundled into ${name}, is gone` };
    if (st.size === size && st.mtimeMs === mtimeMs) continue;
    let same = false;
    try {
      same = st.size === size && hash(readFileSync(file)) === digest;
    } catch {
      // unreadable: not the same
    }
    if (!same) return { current: false, reason: `${path} changed after ${name} was built` };
  }
  return { current: true, path: out };
}

/**
 * Builds the bundle (dist/tsmesh-proxy.mjs) from the sources as they are now (about a second). Each input's size and mtime are
 * taken before esbuild reads it and its hash from the bytes esbuild bundles, so a file edited during the build makes
 * the bundle stale rather than wrong. Written to a temporary file and renamed: a sidecar starting meanwhile reads the
 * old bundle or the new one, whole. Throws esbuild's errors.
 * @param {BundleOptions} [opts]
 * @returns {Promise<{ path: string, inputs: number, bytes: number, ms: number }>}
 */
export async function buildProxyBundle(opts) {
  const { root, entry, out, extraInputs, protos } = settings(opts);
  const started = Date.now();
  const { build } = await import('esbuild');
  /** @type {Map<string, [string, number, number, string]>} */
  const inputs = new Map();
  const record = (file) => {
    const st = statSync(file);
    const bytes = readFileSync(file);
    const path = toPosix(relative(root, file));
    inputs.set(path, [path, st.size, st.mtimeMs, hash(bytes)]);
    return bytes;
  };
  const plugin = {
    name: 'tsmesh-inputs',
    setup(b) {
      b.onLoad({ filter: /.*/ }, (args) => {
        if (args.namespace !== 'file') return undefined;
        const loader = LOADERS[extname(args.path)];
        if (!loader) return undefined;
        let contents = record(args.path).toString('utf8');
        // our modules find files next to them (the addons, bin/tsmesh, package.json) through import.meta.url: keep
        // each one's own location, relative to the bundle so the checkout can move
        if (!args.path.includes(`${sep}node_modules${sep}`) && contents.includes('import.meta.url')) {
          const rel = toPosix(relative(dirname(out), args.path));
          contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
        }
        return { contents, loader };
      });
    },
  };
  for (const f of extraInputs) record(join(root, f));
  /** @type {Record<string, string>} */
  const define = {};
  if (protos) {
    const p = await sidecarProtos(root);
    for (const f of p.sources) record(f);
    define.TSMESH_SIDECAR_PROTOS = JSON.stringify(JSON.stringify(p.descriptor));
  }
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // no comments or indentation: V8 keeps the whole source in memory (and a single non-ASCII character in a
    // comment would make it a two-byte string, twice the size); names are kept, so stack traces name functions
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
    legalComments: 'none',
    // the bundled CommonJS packages call require() for node's own modules
    banner: { js: "import { createRequire as __tsmeshCreateRequire } from 'node:module'; const require = __tsmeshCreateRequire(import.meta.url);" },
    define,
    plugins: [plugin],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  // anything esbuild read without the plugin (a file type it has no loader for here) is recorded as it is now
  for (const path of Object.keys(result.metafile?.inputs ?? {})) {
    if (!path.includes(':') && !inputs.has(toPosix(path))) record(join(root, path));
  }
  const code = result.outputFiles?.[0]?.text;
  if (!code) throw new Error('esbuild produced no output');
  const manifest = { format: 1, entry, inputs: [...inputs.values()].sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
  const text = `${HEADER}${JSON.stringify(manifest)}\n${code}`;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, out);
  return { path: out, inputs: inputs.size, bytes: Buffer.byteLength(text), ms: Date.now() - started };
}

/**
 * The bundle, rebuilt first when it does not match the sources. Never throws: a failed build comes back as the
 * reason (bin/tsmesh then runs the sidecar from the sources).
 * @param {BundleOptions} [opts]
 * @returns {Promise<{ current: true, path: string, built: boolean } | { current: false, reason: string }>}
 */
export async function ensureProxyBundle(opts) {
  const state = checkProxyBundle(opts);
  if (state.current) return { ...state, built: false };
  try {
    const b = await buildProxyBundle(opts);
    return { current: true, path: b.path, built: true };
  } catch (err) {
    return { current: false, reason: `building ${toPosix(relative(settings(opts).root, settings(opts).out))} failed: ${oneLine(err)}` };
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const b = await buildProxyBundle();
    console.error(`tsmesh: built dist/tsmesh-proxy.mjs (tsmesh proxy, ${b.inputs} inputs, ${(b.bytes / 1024).toFixed(0)} KB) in ${(b.ms / 1000).toFixed(1)} s`);
  } catch (err) {
    console.error(`tsmesh: could not build dist/tsmesh-proxy.mjs (${oneLine(err)}); \`tsmesh proxy\` will run from the sources through tsx, with about 35 MB more memory per sidecar. \`npm run build\` retries.`);
    if (process.env.TSMESH_BUNDLE_REQUIRED === '1') process.exit(1);
  }
}
