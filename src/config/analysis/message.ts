// One analysis finding: a message type, its arguments, the resource it is about and the line at fault,
// rendered the way istioctl renders it. Pure; nothing here throws.

import { resourceRef, type FieldPath, type Resource } from '../resource.ts';
import { documentationUrl, formatTemplate, levelRank, type MessageType } from './messages.ts';

export interface AnalysisMessage {
  type: MessageType;
  args: readonly unknown[];
  /** The resource the message is about; absent for messages about no resource. */
  resource?: Resource<unknown>;
  /** 1-based line in the resource's file; 0 or absent means the resource's first line. */
  line?: number;
}

/** A message about `r`, located at `path` inside it (the resource's first line when path is absent). */
export function newMessage(type: MessageType, r: Resource<unknown> | undefined, args: readonly unknown[], path?: FieldPath): AnalysisMessage {
  if (!r) return { type, args };
  const line = path ? r.source.at(path).line : r.source.line;
  return { type, args, resource: r, line };
}

/** The text after the origin: the template filled with the arguments. */
export function messageText(m: AnalysisMessage): string {
  return formatTemplate(m.type.template, m.args);
}

/** `Kind namespace/name` (istioctl's FriendlyName), '' without a resource. */
export function messageOrigin(m: AnalysisMessage): string {
  return m.resource ? resourceRef(m.resource) : '';
}

/**
 * `file:line` as istioctl prints a reference: no line for .json files or unknown lines, and nothing
 * for resources that came from no file.
 */
export function messageReference(m: AnalysisMessage): string {
  const r = m.resource;
  if (!r || r.source.file === '') return '';
  const line = m.line && m.line > 0 ? m.line : r.source.line;
  if (line > 0 && !r.source.file.toLowerCase().endsWith('.json')) return `${r.source.file}:${line}`;
  return r.source.file;
}

/** The namespace a message belongs to for -n filtering: a Namespace's own name, '' for cluster-scoped. */
export function messageNamespace(m: AnalysisMessage): string {
  const r = m.resource;
  if (!r) return '';
  if (r.kind === 'Namespace' && r.group === '') return r.metadata.name;
  return r.metadata.namespace;
}

/** istioctl's line: `Error [IST0101] (VirtualService default/reviews reviews.yaml:12) Referenced host not found: "bogus"`. */
export function formatMessage(m: AnalysisMessage): string {
  let origin = '';
  if (m.resource) {
    const ref = messageReference(m);
    origin = ` (${messageOrigin(m)}${ref ? ' ' + ref : ''})`;
  }
  return `${m.type.level} [${m.type.code}]${origin} ${messageText(m)}`;
}

/** The object istioctl prints for `-o json` / `-o yaml`, keys in Go's (sorted) order. */
export interface MessageObject {
  code: string;
  documentationUrl: string;
  level: string;
  message: string;
  origin?: string;
  reference?: string;
}

export function messageObject(m: AnalysisMessage): MessageObject {
  const o: MessageObject = { code: m.type.code, documentationUrl: documentationUrl(m.type.code), level: m.type.level, message: messageText(m) };
  if (m.resource) {
    o.origin = messageOrigin(m);
    const ref = messageReference(m);
    if (ref) o.reference = ref;
  }
  return o;
}

/** istioctl's comparator for a resource: Kind/name/namespace. */
function comparator(r: Resource<unknown>): string {
  return `${r.kind}/${r.metadata.name}/${r.metadata.namespace}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted by level (worst first), code, resource, then text; identical lines are kept once. */
export function sortAndDedupe(ms: readonly AnalysisMessage[]): AnalysisMessage[] {
  const sorted = [...ms].sort((a, b) => {
    if (a.type.level !== b.type.level) return levelRank(a.type.level) - levelRank(b.type.level);
    if (a.type.code !== b.type.code) return cmp(a.type.code, b.type.code);
    if (!a.resource !== !b.resource) return a.resource ? 1 : -1;
    if (a.resource && b.resource) {
      const c = cmp(comparator(a.resource), comparator(b.resource));
      if (c !== 0) return c;
    }
    return cmp(formatMessage(a), formatMessage(b));
  });
  const out: AnalysisMessage[] = [];
  let last = '';
  for (const m of sorted) {
    const s = formatMessage(m);
    if (out.length > 0 && s === last) continue;
    out.push(m);
    last = s;
  }
  return out;
}
