// tsmesh-specific: Istio kinds that tsmesh validates but does not act on (EnvoyFilter, WasmPlugin, ...)
// are reported with IST0167 IneffectivePolicy ("The policy has no impact"), the closest Istio code.

import { KINDS } from '../../kinds.ts';
import { kindKey, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';

const UNSUPPORTED = KINDS.filter((k) => k.istioCrd && !k.supported);

export const unsupportedKindAnalyzer: Analyzer = {
  name: 'tsmesh.UnsupportedKindAnalyzer',
  description: 'Reports Istio resources of kinds tsmesh validates but does not apply',
  inputs: UNSUPPORTED.map(kindKey),
  analyze(ctx) {
    for (const k of UNSUPPORTED) {
      for (const r of ctx.list(kindKey(k))) {
        ctx.report(newMessage(MESSAGES.IneffectivePolicy, r, [`tsmesh does not support ${k.kind}; it is validated but not applied`], ['kind']));
      }
    }
  },
};
