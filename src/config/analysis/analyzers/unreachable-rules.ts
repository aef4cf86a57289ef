// VirtualService rules that can never match: a rule after a catch-all rule, or whose matches all repeat
// earlier ones (IST0130); single matches that repeat or are covered by an earlier prefix match (IST0131).
// Follows Istio's validation warnings of the same names. Reports; never throws.

import type { FieldPath, Resource } from '../../resource.ts';
import type { HTTPMatchRequest, StringMatch, VirtualServiceSpec } from '../../types.ts';
import { K, arrayOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES, goQuote } from '../messages.ts';

type Section = 'http' | 'tcp' | 'tls';

interface Rule {
  name?: unknown;
  match?: unknown[];
}

/** JSON with sorted keys and proto3 zero values dropped, so equal matches serialize equally. */
function canonical(v: unknown): string | undefined {
  if (v === null || v === undefined || v === false || v === '' || v === 0) return undefined;
  if (Array.isArray(v)) {
    const items = v.map((x) => canonical(x) ?? 'null');
    return items.length === 0 ? undefined : `[${items.join(',')}]`;
  }
  if (typeof v === 'object') {
    const parts: string[] = [];
    for (const k of Object.keys(v).sort()) {
      const c = canonical((v as Record<string, unknown>)[k]);
      if (c !== undefined) parts.push(`${JSON.stringify(k)}:${c}`);
    }
    return parts.length === 0 ? undefined : `{${parts.join(',')}}`;
  }
  return JSON.stringify(v);
}

function matchKey(section: Section, m: unknown): string {
  if (section === 'http' && typeof m === 'object' && m !== null) {
    const { name: _name, ...rest } = m as Record<string, unknown>;
    return canonical(rest) ?? '{}';
  }
  return canonical(m) ?? '{}';
}

function named(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const n = (v as { name?: unknown }).name;
  return typeof n === 'string' && n !== '' ? n : undefined;
}

function ruleName(section: Section, rule: unknown, i: number): string {
  const n = section === 'http' ? named(rule) : undefined;
  return n !== undefined ? goQuote(n) : `#${i}`;
}

function matchName(section: Section, match: unknown, i: number): string {
  const n = section === 'http' ? named(match) : undefined;
  return n !== undefined ? goQuote(n) : `#${i}`;
}

type Report = (path: FieldPath, type: 'unused' | 'ineffective', args: string[]) => void;

function analyzeSection(section: Section, rules: readonly unknown[], report: Report): void {
  const seen = new Map<string, number>();
  let catchAll = -1;
  const prefixMatches: PrefixMatch[] = [];
  rules.forEach((raw, rulen) => {
    if (typeof raw !== 'object' || raw === null) return;
    const rule = raw as Rule;
    const matches = arrayOf(rule.match);
    const rname = ruleName(section, rule, rulen);
    const at: FieldPath = ['spec', section, rulen];
    if (matches.length === 0) {
      if (catchAll >= 0) report(at, 'unused', [rname, 'only the last rule can have no matches']);
      catchAll = rulen;
      return;
    }
    let duplicates = 0;
    matches.forEach((m, matchn) => {
      if (catchAll >= 0) {
        report(at, 'unused', [rname, 'route without matches defined before']);
        return;
      }
      const key = matchKey(section, m);
      const dup = seen.get(key);
      if (dup !== undefined) {
        report([...at, 'match', matchn], 'ineffective', [rname, matchName(section, m, matchn), ruleName(section, rules[dup], dup)]);
        duplicates++;
        return;
      }
      seen.set(key, rulen);
      if (section === 'http') {
        const pm = prefixMatch(m as HTTPMatchRequest, rname, matchName(section, m, matchn), [...at, 'match', matchn]);
        if (pm) prefixMatches.push(pm);
      }
    });
    if (duplicates === matches.length) report(at, 'unused', [rname, 'all matches used by prior rules']);
  });
  // An earlier prefix match that covers a later one makes the later one unused.
  for (let a = 0; a < prefixMatches.length; a++) {
    const earlier = prefixMatches[a];
    if (!earlier) continue;
    for (let b = a + 1; b < prefixMatches.length; b++) {
      const later = prefixMatches[b];
      if (!later || later.prefix === earlier.prefix) continue;
      if (covers(earlier, later)) {
        report(later.path, 'ineffective', [
          later.rule,
          `${later.match} of prefix ${later.prefix}`,
          `${earlier.match} of prefix ${earlier.prefix} on ${earlier.rule}`,
        ]);
      }
    }
  }
}

interface PrefixMatch {
  rule: string;
  match: string;
  path: FieldPath;
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Map<string, string>;
  queryParams: Map<string, string>;
  withoutHeaders: Map<string, string>;
}

function exactOrPrefix(s: StringMatch | undefined): string {
  if (typeof s?.exact === 'string' && s.exact !== '') return `exact:${s.exact}`;
  if (typeof s?.prefix === 'string' && s.prefix !== '') return `prefix:${s.prefix}`;
  return '';
}

function mapOf(v: Record<string, StringMatch> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, sm] of Object.entries(v)) out.set(k, exactOrPrefix(sm));
  return out;
}

function prefixMatch(m: HTTPMatchRequest, rule: string, match: string, path: FieldPath): PrefixMatch | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const prefix = m.uri?.prefix;
  if (typeof prefix !== 'string' || prefix === '') return undefined;
  return {
    rule,
    match,
    path,
    prefix,
    port: typeof m.port === 'number' ? m.port : 0,
    method: exactOrPrefix(m.method) || 'exact:GET', // no method: Istio's check assumes GET
    authority: exactOrPrefix(m.authority),
    headers: mapOf(m.headers),
    queryParams: mapOf(m.queryParams),
    withoutHeaders: mapOf(m.withoutHeaders),
  };
}

function mapCovers(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, va] of a) {
    const vb = b.get(k);
    if (vb === undefined) return false;
    if (va !== vb && !va.startsWith(vb)) return false;
  }
  return true;
}

/** Istio's coveredValidation: does earlier match `a` take every request later match `b` would? */
function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  if (!b.prefix.startsWith(a.prefix)) return false;
  if (a.port !== b.port) return false;
  if (a.method !== b.method && !a.method.startsWith(b.method)) return false;
  if (a.authority !== b.authority && !a.authority.startsWith(b.authority)) return false;
  return mapCovers(a.headers, b.headers) && mapCovers(a.queryParams, b.queryParams) && mapCovers(a.withoutHeaders, b.withoutHeaders);
}

export const unreachableRulesAnalyzer: Analyzer = {
  name: 'virtualservice.UnreachableRulesAnalyzer',
  description: 'Checks for VirtualService rules and matches that can never be used',
  inputs: [K.VirtualService],
  analyze(ctx) {
    for (const vs of ctx.list<VirtualServiceSpec>(K.VirtualService)) analyzeVirtualService(vs, ctx.report.bind(ctx));
  },
};

function analyzeVirtualService(vs: Resource<VirtualServiceSpec>, report: (m: ReturnType<typeof newMessage>) => void): void {
  const r: Report = (path, type, args) => {
    const mt = type === 'unused' ? MESSAGES.VirtualServiceUnreachableRule : MESSAGES.VirtualServiceIneffectiveMatch;
    report(newMessage(mt, vs, args, path));
  };
  analyzeSection('http', arrayOf(vs.spec.http), r);
  analyzeSection('tcp', arrayOf(vs.spec.tcp), r);
  analyzeSection('tls', arrayOf(vs.spec.tls), r);
}
