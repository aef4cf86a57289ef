// Kubernetes kinds tsmesh reads, checked as the Kubernetes API server would for the fields tsmesh
// relies on: Service ports, pod specs (containers, ports), controller selectors matching their
// template labels, Job restart policies, Endpoints/EndpointSlice addresses. Never throws.

import { entries, isSet, list, num, obj, quote, str, strings, type Checker, type Obj, type Path } from './check.ts';
import { checkLabels, ianaSvcNameProblem, ipProblem, isIPAddress, isK8sLabel, isK8sSubdomain, portProblem } from './common.ts';

const K8S_PROTOCOLS = ['TCP', 'UDP', 'SCTP'];
const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

export function validateService(c: Checker, spec: Obj): void {
  const type = str(spec.type) ?? 'ClusterIP';
  if (!SERVICE_TYPES.includes(type)) c.error(['spec', 'type'], `unknown Service type ${quote(type)}: use one of ${SERVICE_TYPES.join(', ')}`);
  const clusterIP = str(spec.clusterIP);
  if (clusterIP !== undefined && clusterIP !== '' && clusterIP !== 'None' && !isIPAddress(clusterIP)) {
    c.error(['spec', 'clusterIP'], `clusterIP ${quote(clusterIP)} must be an IP address, "None" (headless) or empty`);
  }
  if (type === 'ExternalName') {
    const name = str(spec.externalName) ?? '';
    if (name === '') c.error(['spec', 'externalName'], 'a Service of type ExternalName needs externalName (a DNS name such as db.example.com)');
    else if (!isK8sSubdomain(name.replace(/\.$/, ''))) c.error(['spec', 'externalName'], `externalName ${quote(name)} must be a lower-case DNS name`);
  }
  const ports = list(spec.ports);
  if (ports.length === 0 && type !== 'ExternalName' && clusterIP !== 'None') {
    c.error(['spec', 'ports'], 'a Service needs at least one port (port: 1..65535), unless it is headless (clusterIP: None) or ExternalName');
  }
  const names = new Map<string, number>();
  const portProtocols = new Set<string>();
  ports.forEach((item, i) => {
    const p = ['spec', 'ports', i];
    const port = obj(item);
    if (!port) return;
    const name = str(port.name) ?? '';
    if (name === '' && ports.length > 1) c.error([...p, 'name'], 'each port needs a name when a Service has more than one port (e.g. http, grpc-web)');
    if (name !== '') {
      if (!isK8sLabel(name)) c.error([...p, 'name'], `port name ${quote(name)} must be a lower-case DNS label (letters, digits and '-')`);
      const first = names.get(name);
      if (first !== undefined) c.error([...p, 'name'], `port name ${quote(name)} is already used by spec.ports[${first}]: names must be unique`);
      else names.set(name, i);
    }
    if (!isSet(port, 'port')) c.error([...p, 'port'], 'port is required (1..65535)');
    else c.check([...p, 'port'], portProblem(port.port, 'port'));
    const protocol = str(port.protocol) ?? 'TCP';
    if (!K8S_PROTOCOLS.includes(protocol)) c.error([...p, 'protocol'], `protocol ${quote(protocol)} must be TCP, UDP or SCTP (put the application protocol in the port name or appProtocol)`);
    const key = `${String(port.port)}/${protocol}`;
    if (portProtocols.has(key)) c.error([...p, 'port'], `port ${String(port.port)}/${protocol} is declared twice`);
    portProtocols.add(key);
    checkTargetPort(c, [...p, 'targetPort'], port.targetPort);
    if (isSet(port, 'nodePort')) c.check([...p, 'nodePort'], portProblem(port.nodePort, 'nodePort'));
  });
  checkLabels(c, ['spec', 'selector'], spec.selector);
}

function checkTargetPort(c: Checker, p: Path, target: unknown): void {
  if (typeof target === 'number') c.check(p, portProblem(target, 'targetPort'));
  else if (typeof target === 'string') {
    if (/^[0-9]+$/.test(target)) c.check(p, portProblem(Number(target), 'targetPort'));
    else c.check(p, ianaSvcNameProblem(target) === undefined ? undefined : `targetPort ${quote(target)} must be a number (1..65535) or a container port name (${ianaSvcNameProblem(target) ?? ''})`);
  }
}

export function validatePod(c: Checker, spec: Obj): void {
  checkPodSpec(c, ['spec'], spec, 'Pod');
}

/** Deployment, StatefulSet, DaemonSet, ReplicaSet: a selector matching the template's labels, a pod template. */
export function validateController(c: Checker, spec: Obj): void {
  const replicas = num(spec.replicas);
  if (replicas !== undefined && (replicas < 0 || !Number.isInteger(replicas))) c.error(['spec', 'replicas'], `replicas ${replicas} must be a whole number, 0 or more`);
  const selector = obj(spec.selector);
  const template = obj(spec.template);
  const hasTerms = selector && (entries(selector.matchLabels).length > 0 || list(selector.matchExpressions).length > 0);
  if (!hasTerms) c.error(['spec', 'selector'], `spec.selector is required: matchLabels that the pod template's labels carry (e.g. app: ${c.r.metadata.name})`);
  if (!template) {
    c.error(['spec', 'template'], 'spec.template is required: the pod template (metadata.labels and spec.containers)');
    return;
  }
  const labels = obj(obj(template.metadata)?.labels) ?? {};
  checkLabels(c, ['spec', 'template', 'metadata', 'labels'], labels);
  if (selector && hasTerms) checkSelectorMatches(c, selector, labels);
  checkPodSpec(c, ['spec', 'template', 'spec'], obj(template.spec), c.r.kind);
}

export function validateJob(c: Checker, spec: Obj): void {
  const template = obj(spec.template);
  if (!template) {
    c.error(['spec', 'template'], 'spec.template is required: the pod template (spec.containers, restartPolicy)');
    return;
  }
  const podSpec = obj(template.spec);
  const policy = str(podSpec?.restartPolicy);
  if (policy !== 'Never' && policy !== 'OnFailure') {
    c.error(['spec', 'template', 'spec', 'restartPolicy'], `a Job's pods need restartPolicy Never or OnFailure (got ${policy ?? 'none, which means Always'})`);
  }
  const selector = obj(spec.selector);
  if (selector) checkSelectorMatches(c, selector, obj(obj(template.metadata)?.labels) ?? {});
  checkPodSpec(c, ['spec', 'template', 'spec'], podSpec, 'Job');
}

function checkSelectorMatches(c: Checker, selector: Obj, labels: Obj): void {
  for (const [k, v] of entries(selector.matchLabels)) {
    if (labels[k] === undefined || String(labels[k]) !== String(v)) {
      c.error(['spec', 'selector', 'matchLabels', k], `selector ${k}=${String(v)} does not match the pod template's labels: add ${k}: ${String(v)} to spec.template.metadata.labels`);
    }
  }
  list(selector.matchExpressions).forEach((e, i) => {
    const expr = obj(e);
    if (!expr) return;
    const key = str(expr.key) ?? '';
    const op = str(expr.operator) ?? '';
    const vals = strings(expr.values).map(([, v]) => v);
    const has = labels[key] !== undefined;
    const value = has ? String(labels[key]) : undefined;
    const p = ['spec', 'selector', 'matchExpressions', i];
    let ok: boolean;
    switch (op) {
      case 'In':
        ok = value !== undefined && vals.includes(value);
        break;
      case 'NotIn':
        ok = value === undefined || !vals.includes(value);
        break;
      case 'Exists':
        ok = has;
        break;
      case 'DoesNotExist':
        ok = !has;
        break;
      default:
        c.error([...p, 'operator'], `operator ${quote(op)} must be In, NotIn, Exists or DoesNotExist`);
        return;
    }
    if ((op === 'In' || op === 'NotIn') && vals.length === 0) c.error([...p, 'values'], `operator ${op} needs values`);
    if (!ok) c.error(p, `selector expression ${key} ${op} [${vals.join(', ')}] does not match the pod template's labels`);
  });
}

function checkPodSpec(c: Checker, p: Path, spec: Obj | undefined, owner: string): void {
  const containers = list(spec?.containers);
  if (!spec || containers.length === 0) {
    c.error([...p, 'containers'], `a ${owner} needs at least one container (name and image) in ${[...p, 'containers'].join('.')}`);
    return;
  }
  const names = new Set<string>();
  const portNames = new Set<string>();
  const check = (field: string, item: unknown, i: number): void => {
    const cp = [...p, field, i];
    const container = obj(item);
    if (!container) return;
    const name = str(container.name) ?? '';
    if (name === '') c.error([...cp, 'name'], 'a container needs a name (a lower-case DNS label)');
    else if (!isK8sLabel(name)) c.error([...cp, 'name'], `container name ${quote(name)} must be a lower-case DNS label (letters, digits and '-')`);
    else if (names.has(name)) c.error([...cp, 'name'], `container name ${quote(name)} is used twice: names must be unique in a pod`);
    names.add(name);
    if (!str(container.image)) c.error([...cp, 'image'], 'a container needs an image');
    list(container.ports).forEach((port, j) => {
      const pp = [...cp, 'ports', j];
      const po = obj(port);
      if (!po) return;
      if (!isSet(po, 'containerPort')) c.error([...pp, 'containerPort'], 'containerPort is required (1..65535)');
      else c.check([...pp, 'containerPort'], portProblem(po.containerPort, 'containerPort'));
      const portName = str(po.name);
      if (portName !== undefined) {
        if (c.check([...pp, 'name'], ianaSvcNameProblem(portName)) && portNames.has(portName)) c.error([...pp, 'name'], `port name ${quote(portName)} is used twice in this pod`);
        portNames.add(portName);
      }
      const protocol = str(po.protocol);
      if (protocol !== undefined && !K8S_PROTOCOLS.includes(protocol)) c.error([...pp, 'protocol'], `protocol ${quote(protocol)} must be TCP, UDP or SCTP`);
    });
  };
  list(spec.initContainers).forEach((x, i) => check('initContainers', x, i));
  containers.forEach((x, i) => check('containers', x, i));
  const policy = str(spec.restartPolicy);
  if (policy !== undefined && !['Always', 'OnFailure', 'Never'].includes(policy)) c.error([...p, 'restartPolicy'], `restartPolicy ${quote(policy)} must be Always, OnFailure or Never`);
  const sa = str(spec.serviceAccountName);
  if (sa !== undefined && sa !== '' && !isK8sSubdomain(sa)) c.error([...p, 'serviceAccountName'], `serviceAccountName ${quote(sa)} must be a lower-case DNS name`);
}

export function validateEndpoints(c: Checker, body: Obj): void {
  list(body.subsets).forEach((s, i) => {
    const subset = obj(s);
    if (!subset) return;
    for (const field of ['addresses', 'notReadyAddresses']) {
      list(subset[field]).forEach((a, j) => {
        const ip = str(obj(a)?.ip) ?? '';
        c.check(['subsets', i, field, j, 'ip'], ipProblem(ip));
      });
    }
    list(subset.ports).forEach((port, j) => c.check(['subsets', i, 'ports', j, 'port'], portProblem(obj(port)?.port)));
  });
}

export function validateEndpointSlice(c: Checker, body: Obj): void {
  const type = str(body.addressType) ?? '';
  if (!['IPv4', 'IPv6', 'FQDN'].includes(type)) c.error(['addressType'], `addressType ${quote(type)} must be IPv4, IPv6 or FQDN`);
  list(body.endpoints).forEach((e, i) => {
    for (const [j, address] of strings(obj(e)?.addresses)) {
      const p = ['endpoints', i, 'addresses', j];
      if (type === 'FQDN') c.check(p, isK8sSubdomain(address) ? undefined : `address ${quote(address)} must be a lower-case DNS name`);
      else if (type === 'IPv4' || type === 'IPv6') c.check(p, ipProblem(address));
    }
  });
  list(body.ports).forEach((port, j) => c.check(['ports', j, 'port'], portProblem(obj(port)?.port)));
}
