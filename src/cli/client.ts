// A small HTTP client for the control plane's API, used by the CLI. Unreachable control planes and
// error statuses become MeshErrors that say where it looked and how to start one.

import { MeshError } from '../common/errors.ts';
import { isAlive, readState } from '../runtime/state.ts';

export const DEFAULT_CONTROLPLANE = 'http://127.0.0.1:15014';

/** The control plane to talk to: --controlplane, $TSMESH_CONTROLPLANE, the running `tsmesh up` mesh's, else the default. */
export function controlPlaneUrl(flag: string | undefined): string {
  const given = flag ?? process.env.TSMESH_CONTROLPLANE;
  if (given !== undefined) return given.replace(/\/+$/, '');
  const mesh = readState();
  const running = mesh && isAlive(mesh.pid) && !mesh.controlplane.http.endsWith(':0') ? mesh.controlplane.http : undefined;
  return (running ?? DEFAULT_CONTROLPLANE).replace(/\/+$/, '');
}

export async function callControlPlane<T>(base: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(base + path, {
      method: init.method ?? 'GET',
      ...(init.body !== undefined ? { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new MeshError('MESH_ERR_CONTROLPLANE_UNREACHABLE', `cannot reach the control plane at ${base}: ${cause?.code ?? cause?.message ?? String(err)} (start one with \`tsmesh controlplane -f DIR\` or \`tsmesh up\`, or pass --controlplane URL)`, { cause: err });
  }
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (res.status >= 400 && res.status !== 422) {
    const msg = typeof body === 'object' && body && 'error' in body ? String((body).error) : text;
    throw new MeshError(res.status === 404 ? 'MESH_ERR_REGISTRY_NOT_FOUND' : 'MESH_ERR_CONTROLPLANE_REQUEST', `${path}: ${msg}`);
  }
  return { status: res.status, body: body as T };
}
