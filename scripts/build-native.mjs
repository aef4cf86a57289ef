// Builds the native addons (binding.gyp -> build/Release/original_dst.node, SO_ORIGINAL_DST, and
// build/Release/shared_counters.node, the workers' shared circuit-breaker counts) with the node-gyp that
// ships with npm, offline against this Node's installed headers when present. A failed build warns and exits 0
// (the sidecar then reports MESH_ERR_ORIGDST_UNAVAILABLE) unless TSMESH_NATIVE_REQUIRED=1.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function bundledNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  // Outside npm: npm's own copy beside this node binary (…/lib/node_modules/npm/node_modules/node-gyp).
  const prefix = dirname(dirname(process.execPath));
  for (const p of [join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')]) {
    if (existsSync(p)) return p;
  }
  return undefined;
}

// Headers of the running node: npm's nodedir setting, else the install prefix when it has include/node.
function nodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured && existsSync(join(configured, 'include', 'node', 'node_api.h'))) return configured;
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  return undefined; // node-gyp downloads the headers (needs network) or uses its cache
}

const gyp = bundledNodeGyp();
const started = Date.now();
let status = 1;
let why = '';
if (!gyp) {
  why = 'node-gyp not found (it ships with npm)';
} else {
  const dir = nodeDir();
  const args = [gyp, 'rebuild', ...(dir ? [`--nodedir=${dir}`] : [])];
  const res = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  status = res.status ?? 1;
  why = res.error ? res.error.message : `node-gyp exited with ${status}`;
}
if (status === 0) {
  console.error(`tsmesh: built build/Release/original_dst.node and shared_counters.node in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} else {
  const msg = `tsmesh: could not build the SO_ORIGINAL_DST addon (${why}). Install python3, make and a C compiler (g++/gcc), then run \`npm rebuild\`. The sidecar's outbound capture (port 15001) needs it on Linux.`;
  console.error(msg);
  if (process.env.TSMESH_NATIVE_REQUIRED === '1') process.exit(status || 1);
}
