// Types of scripts/proxy-bundle.mjs (the sidecar's prebuilt bundle), for the TypeScript modules that import it.

/** dist/tsmesh-proxy.mjs. */
export const PROXY_BUNDLE: string;

/** Where things are; the defaults are tsmesh's own (tests bundle small programs). */
export interface BundleOptions {
  /** The directory input paths are relative to. */
  root?: string;
  /** The entry module, relative to root. */
  entry?: string;
  /** The bundle's path. */
  out?: string;
  /** Files that shape the output without being bundled, relative to root. */
  extraInputs?: string[];
}

/** Whether the bundle matches the sources as they are now; never throws. */
export function checkProxyBundle(opts?: BundleOptions): { current: true; path: string } | { current: false; reason: string };

/** Builds the bundle from the sources as they are now; throws esbuild's errors. */
export function buildProxyBundle(opts?: BundleOptions): Promise<{ path: string; inputs: number; bytes: number; ms: number }>;

/** The bundle, rebuilt first when stale; a failed build comes back as the reason. Never throws. */
export function ensureProxyBundle(opts?: BundleOptions): Promise<{ current: true; path: string; built: boolean } | { current: false; reason: string }>;
