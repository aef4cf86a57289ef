// Prints analysis messages as istioctl does: one line per message (`log`), or the array of message
// objects as tab-indented JSON (Go's encoding, with <, > and & escaped) or YAML. Pure; never throws.

import { stringify } from 'yaml';
import { formatMessage, messageObject, type AnalysisMessage } from './message.ts';

export type OutputFormat = 'log' | 'json' | 'yaml';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['log', 'json', 'yaml'];

/** 'text' is accepted as tsmesh's name for istioctl's 'log'. */
export function parseOutputFormat(s: string): OutputFormat | undefined {
  const l = s.toLowerCase();
  if (l === 'text') return 'log';
  return (OUTPUT_FORMATS as readonly string[]).includes(l) ? (l as OutputFormat) : undefined;
}

export function formatMessages(ms: readonly AnalysisMessage[], format: OutputFormat): string {
  switch (format) {
    case 'log':
      return ms.map(formatMessage).join('\n');
    case 'json':
      return JSON.stringify(ms.map(messageObject), null, '\t')
        .replace(/</g, '\\u003c')
        .replace(/>/g, '\\u003e')
        .replace(/&/g, '\\u0026');
    case 'yaml':
      return stringify(ms.map(messageObject), { lineWidth: 0 });
  }
}
