// Every analyzer `tsmesh analyze` runs, in one list (like istioctl's analyzers.All()).

import type { Analyzer } from '../analyzer.ts';
import { applicationUIDAnalyzer } from './application-uid.ts';
import { destinationHostAnalyzer } from './destination-hosts.ts';
import { destinationRuleAnalyzer } from './destination-rules.ts';
import { subsetSelectPodAnalyzer } from './destinationrule-subsets.ts';
import { injectionAnalyzer } from './injection.ts';
import { meshGatewayHostsAnalyzer } from './mesh-gateway-hosts.ts';
import { portNameAnalyzer } from './service-port-names.ts';
import { sidecarDefaultSelectorAnalyzer, sidecarSelectorAnalyzer } from './sidecar-selectors.ts';
import { unreachableRulesAnalyzer } from './unreachable-rules.ts';
import { unsupportedKindAnalyzer } from './unsupported-kinds.ts';

export const ALL_ANALYZERS: readonly Analyzer[] = [
  applicationUIDAnalyzer,
  subsetSelectPodAnalyzer,
  injectionAnalyzer,
  portNameAnalyzer,
  sidecarDefaultSelectorAnalyzer,
  sidecarSelectorAnalyzer,
  unsupportedKindAnalyzer,
  meshGatewayHostsAnalyzer,
  destinationHostAnalyzer,
  destinationRuleAnalyzer,
  unreachableRulesAnalyzer,
];
