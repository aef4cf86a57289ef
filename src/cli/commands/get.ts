// `tsmesh get pods|jobs|svc|vs|dr|se|sidecar|...`: kubectl-style listing of the running mesh's objects; pods and
// Jobs from the runtime's state file (with their status), everything else from the control plane's API.

import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { MeshError } from '../../common/errors.ts';
import { kindByName } from '../../config/kinds.ts';
import { humanDuration, jobCompletionsText, jobDurationText, jobObject, jobStatusText, type JobState } from '../../runtime/job.ts';
import { containerStatus, podRestarts, podStatusText } from '../../runtime/pod-status.ts';
import { readState, type PodState } from '../../runtime/state.ts';
import { tabulate } from '../../xds/configdump/tabwriter.ts';
import { callControlPlane, controlPlaneUrl } from '../client.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'List objects of the running mesh (pods, svc, vs, dr, se, sidecar, ...) like kubectl get';
export const usage = 'Usage: tsmesh get pods|jobs|svc|vs|dr|se|sidecar|<kind> [NAME] [-n NS | -A] [-o wide|yaml|json] [--controlplane URL]';

type Obj = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; creationTimestamp?: string }; spec?: Record<string, unknown>; status?: Record<string, unknown> };

export async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { namespace: { type: 'string', short: 'n' }, 'all-namespaces': { type: 'boolean', short: 'A' }, output: { type: 'string', short: 'o' }, controlplane: { type: 'string' } } });
  const [what, name] = positionals;
  if (!what) throw new MeshError('MESH_ERR_CLI_USAGE', usage);
  const ns = values['all-namespaces'] ? undefined : (values.namespace ?? 'default');
  let items: Obj[];
  let kind: string;
  let podStatus = new Map<string, PodState>();
  let jobStatus = new Map<string, JobState>();
  if (['job', 'jobs'].includes(what.toLowerCase())) {
    kind = 'Job';
    const s = readState();
    if (!s) throw new MeshError('MESH_ERR_CONTROLPLANE_UNREACHABLE', 'no mesh is running (start one with `tsmesh up DIR`)');
    const jobs = s.jobs ?? [];
    items = jobs.map((j) => jobObject(j) as Obj);
    jobStatus = new Map(jobs.map((j) => [`${j.namespace}/${j.name}`, j]));
  } else if (['pod', 'pods', 'po'].includes(what.toLowerCase())) {
    kind = 'Pod';
    const s = readState();
    if (!s) throw new MeshError('MESH_ERR_CONTROLPLANE_UNREACHABLE', 'no mesh is running (start one with `tsmesh up DIR`)');
    items = s.pods.map((p) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
      spec: { ...(p.initContainers?.length ? { initContainers: p.initContainers.map((c) => ({ name: c.name })) } : {}), containers: p.containers.map((c) => ({ name: c.name })), ...(p.restartPolicy ? { restartPolicy: p.restartPolicy } : {}) },
      status: {
        phase: p.phase,
        podIP: p.ip,
        ...(p.reason ? { reason: p.reason } : {}),
        ...(p.message ? { message: p.message } : {}),
        ...(p.initContainers?.length ? { initContainerStatuses: p.initContainers.map(containerStatus) } : {}),
        containerStatuses: p.containers.map(containerStatus),
      },
    }));
    podStatus = new Map(s.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  } else {
    const info = kindByName(what);
    if (!info) throw new MeshError('MESH_ERR_CLI_USAGE', `get: unknown resource type "${what}"`);
    kind = info.kind;
    const q = `?kind=${encodeURIComponent(info.kind)}${ns ? `&namespace=${encodeURIComponent(ns)}` : ''}`;
    items = (await callControlPlane<{ items: Obj[] }>(controlPlaneUrl(values.controlplane), `/apis/v1/resources${q}`)).body.items;
  }
  items = items.filter((i) => (!ns || (i.metadata.namespace ?? '') === ns || i.kind === 'Namespace') && (!name || i.metadata.name === name));
  if (values.output === 'json') {
    io.out(JSON.stringify(name && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items }, null, 2));
    return 0;
  }
  if (values.output === 'yaml') {
    io.out(stringify(name && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items }));
    return 0;
  }
  if (items.length === 0) {
    io.err(ns ? `No resources found in ${ns} namespace.` : 'No resources found');
    return name ? 1 : 0;
  }
  const withNs = ns === undefined;
  const rows: string[][] = [];
  if (kind === 'Job') {
    rows.push([...(withNs ? ['NAMESPACE'] : []), 'NAME', 'STATUS', 'COMPLETIONS', 'DURATION', 'AGE']);
    const now = Date.now();
    for (const i of items) {
      const j = jobStatus.get(`${i.metadata.namespace ?? ''}/${i.metadata.name}`);
      if (!j) continue;
      rows.push([...(withNs ? [j.namespace] : []), j.name, jobStatusText(j), jobCompletionsText(j), jobDurationText(j, now), humanDuration(now - Date.parse(j.startTime))]);
    }
  } else if (kind === 'Pod') {
    rows.push([...(withNs ? ['NAMESPACE'] : []), 'NAME', 'READY', 'STATUS', 'RESTARTS', 'IP']);
    for (const i of items) {
      const p = podStatus.get(`${i.metadata.namespace ?? ''}/${i.metadata.name}`);
      const cs = p?.containers ?? [];
      rows.push([...(withNs ? [i.metadata.namespace ?? ''] : []), i.metadata.name, `${cs.filter((c) => c.ready).length}/${cs.length}`, p ? podStatusText(p) : String(i.status?.phase ?? ''), String(p ? podRestarts(p) : 0), String(i.status?.podIP ?? '')]);
    }
  } else {
    rows.push([...(withNs ? ['NAMESPACE'] : []), 'NAME', 'KIND']);
    for (const i of items) rows.push([...(withNs ? [i.metadata.namespace ?? ''] : []), i.metadata.name, `${i.kind ?? kind}`]);
  }
  io.out(tabulate(rows, 3));
  return 0;
}
