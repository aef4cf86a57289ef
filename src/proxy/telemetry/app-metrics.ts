// The agent's view of the application's own Prometheus metrics (ISTIO_PROMETHEUS_ANNOTATIONS, as the injector sets
// it from the pod's prometheus.io/* annotations): parsed once, scraped per merged scrape with a timeout. A bad
// setting disables scraping with a warning; a failed scrape returns an error value, never throws.

import { logger } from '../../common/log.ts';

const log = logger('agent');

export interface AppScrapeConfig {
  /** Port of the application's metrics endpoint on the pod (scraped on 127.0.0.1). */
  port: number;
  path: string;
  scheme: 'http' | 'https';
  host?: string;
}

/** The app scrape from ISTIO_PROMETHEUS_ANNOTATIONS (`{"scrape":"true","path":"/metrics","port":"8080"}`); undefined when off. */
export function appScrapeFromEnv(env: NodeJS.ProcessEnv = process.env): AppScrapeConfig | undefined {
  const raw = env.ISTIO_PROMETHEUS_ANNOTATIONS;
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    log.warn('ISTIO_PROMETHEUS_ANNOTATIONS is not JSON; application metrics are not merged', { error: (err as Error).message });
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const a = parsed as Record<string, unknown>;
  if (String(a.scrape ?? '').toLowerCase() !== 'true') return undefined;
  const port = Number(a.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    log.warn('ISTIO_PROMETHEUS_ANNOTATIONS has no valid port; application metrics are not merged', { port: a.port });
    return undefined;
  }
  let path = typeof a.path === 'string' && a.path !== '' ? a.path : '/metrics';
  if (!path.startsWith('/')) path = `/${path}`;
  const scheme = a.scheme === 'https' ? 'https' : 'http';
  return { port, path, scheme };
}

export type ScrapeResult = { ok: true; text: string } | { ok: false; error: string };

/**
 * Fetches the application's metrics in the 0.0.4 text format (OpenMetrics' `# EOF` is dropped so the merged
 * body stays valid). The body always ends with a newline.
 */
export async function scrapeApp(cfg: AppScrapeConfig, timeoutMs: number): Promise<ScrapeResult> {
  const url = `${cfg.scheme}://${cfg.host ?? '127.0.0.1'}:${cfg.port}${cfg.path}`;
  try {
    const res = await fetch(url, {
      headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.text();
    if (res.status !== 200) return { ok: false, error: `${url}: HTTP ${res.status}` };
    let text = body;
    const eof = text.lastIndexOf('# EOF');
    if (eof >= 0 && text.slice(eof).trim() === '# EOF') text = text.slice(0, eof);
    if (text !== '' && !text.endsWith('\n')) text += '\n';
    return { ok: true, text };
  } catch (err) {
    const e = err as Error & { cause?: { message?: string } };
    return { ok: false, error: `${url}: ${e.cause?.message ?? e.message}` };
  }
}
