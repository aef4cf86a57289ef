// The control plane process (our istiod): a config store fed by watched files and the HTTP API, an
// immutable push context rebuilt per accepted change, and the ADS server pushing per-proxy xDS built
// by the translators. A rejected change is logged with its errors and the last good config serves on.

import { logger, type Logger } from '../common/log.ts';
import { formatDiagnostic } from '../config/diagnostics.ts';
import { applyMeshOverrides, meshConfigFromResources, type MeshConfig } from '../config/mesh-config.ts';
import type { Resource } from '../config/resource.ts';
import { validateResources } from '../config/validate.ts';
import type { RegistryOptions } from '../registry/types.ts';
import { ConfigStore, type ConfigChange } from './config-store.ts';
import { FileSource } from './file-source.ts';
import { meshGenerators, proxyInfoOf } from './generators.ts';
import { startHttpApi, type HttpApi } from './http-api.ts';
import { buildPushContext, type PushContext } from './model/push-context.ts';
import { findSidecar, parseEgressHost } from './model/sidecar-scope.ts';
import { AdsServer, type ConnectedProxy } from './xds/ads-server.ts';
import type { Clock, DebounceOptions } from './xds/debounce.ts';
import type { PushRequest } from './xds/push-request.ts';

export const DEFAULT_XDS_ADDRESS = '0.0.0.0:15010';
export const DEFAULT_HTTP_ADDRESS = '0.0.0.0:15014';

export interface ControlPlaneOptions {
  /** Directories (or files) of YAML to serve and watch. */
  configPaths?: string[];
  watch?: boolean;
  /** host:port for ADS (default 0.0.0.0:15010); port 0 picks a free one. */
  xdsAddress?: string;
  /** host:port for the HTTP API and debug endpoints (default 0.0.0.0:15014). */
  httpAddress?: string;
  /** `meshConfig.x=y` overrides applied over the `istio` ConfigMap. */
  meshOverrides?: string[];
  registry?: RegistryOptions;
  defaultNamespace?: string;
  debounce?: Partial<DebounceOptions>;
  clock?: Clock;
  log?: Logger;
}

/** The kinds whose change can alter every proxy's config (the mesh config lives in a ConfigMap). */
const GLOBAL_KINDS = new Set(['ConfigMap', 'Namespace']);

export class ControlPlane {
  readonly store: ConfigStore;
  readonly ads: AdsServer<PushContext>;
  readonly log: Logger;
  readonly #opts: ControlPlaneOptions;
  #files?: FileSource;
  #http?: HttpApi;
  #push?: PushContext;
  #pushVersion = -1;
  #ready = false;
  xdsPort = 0;
  httpPort = 0;

  constructor(opts: ControlPlaneOptions = {}) {
    this.#opts = opts;
    this.log = opts.log ?? logger('controlplane');
    this.store = new ConfigStore(validateResources);
    this.ads = new AdsServer<PushContext>({
      generators: meshGenerators(),
      snapshot: () => this.pushContext(),
      log: this.log,
      shouldPush: (proxy, req) => changeMayAffect(proxy, req, this.pushContext()),
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.debounce ? { debounce: opts.debounce } : {}),
    });
    this.store.onChange((change) => this.ads.push(pushRequestFor(change)));
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** The push context of the current store version, built on first use after a change. */
  pushContext(): PushContext {
    if (!this.#push || this.#pushVersion !== this.store.version) {
      const resources = this.store.snapshot();
      this.#push = buildPushContext(resources, { ...(this.#opts.registry ?? {}), mesh: this.meshConfig(resources) });
      this.#pushVersion = this.store.version;
    }
    return this.#push;
  }

  meshConfig(resources: readonly Resource[] = this.store.snapshot()): MeshConfig {
    const { mesh, diagnostics } = meshConfigFromResources(resources);
    for (const d of diagnostics) this.log.warn(formatDiagnostic(d));
    return this.#opts.meshOverrides?.length ? applyMeshOverrides(mesh, this.#opts.meshOverrides) : mesh;
  }

  async start(): Promise<void> {
    if (this.#opts.configPaths?.length) {
      this.#files = new FileSource(this.#opts.configPaths, this.store, {
        log: this.log,
        ...(this.#opts.defaultNamespace ? { defaultNamespace: this.#opts.defaultNamespace } : {}),
      });
      await this.#files.start(this.#opts.watch ?? true);
    }
    this.meshConfig(); // validates --set overrides before anything listens
    this.xdsPort = await this.ads.start(this.#opts.xdsAddress ?? DEFAULT_XDS_ADDRESS);
    this.#http = await startHttpApi(this, this.#opts.httpAddress ?? DEFAULT_HTTP_ADDRESS);
    this.httpPort = this.#http.port;
    this.#ready = true;
    this.log.info('control plane ready', { xds: this.xdsPort, http: this.httpPort, resources: this.store.snapshot().length });
  }

  async stop(): Promise<void> {
    this.#ready = false;
    this.#files?.stop();
    await this.#http?.close();
    await this.ads.stop();
  }

  /** Waits until watched files have been reloaded (tests). */
  async filesIdle(): Promise<void> {
    await this.#files?.idle();
  }
}

export function pushRequestFor(change: ConfigChange): PushRequest {
  const global = [...change.kinds].some((k) => GLOBAL_KINDS.has(k));
  return global
    ? { full: true, reasons: new Set(['global']) }
    : { full: true, reasons: new Set(['config']), kinds: new Set(change.kinds), namespaces: new Set(change.namespaces) };
}

/** Kinds a proxy sees only through the namespaces its Sidecar egress imports (no VirtualService delegation yet). */
const EGRESS_SCOPED_KINDS = new Set(['VirtualService', 'DestinationRule']);

/**
 * Istio's SidecarScope.DependsOnConfig, coarsely: false only when a config change touches nothing but
 * VirtualServices and DestinationRules, in namespaces that are neither the proxy's, nor the root
 * namespace, nor imported by its Sidecar's egress hosts. Anything unknown pushes.
 */
export function changeMayAffect(proxy: ConnectedProxy, req: PushRequest, push: PushContext): boolean {
  if (proxy.type !== 'sidecar' || !req.kinds || !req.namespaces || [...req.reasons].some((r) => r !== 'config')) return true;
  for (const k of req.kinds) if (!EGRESS_SCOPED_KINDS.has(k)) return true;
  const info = proxyInfoOf(proxy, push);
  const { sidecar, appliedFrom } = findSidecar(info, push);
  const egress = sidecar?.spec.egress;
  if (!sidecar || !Array.isArray(egress) || egress.length === 0) return true;
  const configNamespace = appliedFrom === 'root' ? info.namespace : sidecar.metadata.namespace;
  const imported = new Set([info.namespace, push.mesh.rootNamespace]);
  for (const l of egress) {
    for (const h of Array.isArray(l.hosts) ? l.hosts : []) {
      const rule = typeof h === 'string' ? parseEgressHost(h, configNamespace) : undefined;
      if (rule?.namespace === '*') return true;
      if (rule && rule.namespace !== '~') imported.add(rule.namespace);
    }
  }
  return [...req.namespaces].some((ns) => imported.has(ns));
}

export function parseAddress(addr: string): { host: string; port: number } {
  const idx = addr.lastIndexOf(':');
  return { host: addr.slice(0, idx).replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(addr.slice(idx + 1)) };
}
