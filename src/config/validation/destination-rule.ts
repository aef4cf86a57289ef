// DestinationRule rules beyond the schema: host, subsets, and traffic policies (load balancer,
// connection pool, outlier detection, client TLS, per-port settings, tunnel) as Istio's webhook checks
// them. The connection-pool and TLS checks are shared with Sidecar. Reports on the checker; never throws.

import { entries, isSet, list, num, obj, quote, str, strings, wrapped, type Checker, type Obj, type Path } from './check.ts';
import {
  checkExportTo, checkLabels, checkSelector, durationProblem, fqdnProblem, isDnsLabel, isIPAddress, percentIntProblem,
  portProblem, wildcardDomainProblem,
} from './common.ts';

export function validateDestinationRule(c: Checker, spec: Obj): void {
  const host = str(spec.host);
  if (host === undefined || host === '') c.error(['spec', 'host'], 'host is required: the service this rule applies to (e.g. reviews or reviews.bookinfo.svc.cluster.local)');
  else c.check(['spec', 'host'], wildcardDomainProblem(host));

  checkTrafficPolicy(c, ['spec', 'trafficPolicy'], spec.trafficPolicy);

  const seen = new Map<string, number>();
  list(spec.subsets).forEach((s, i) => {
    const p = ['spec', 'subsets', i];
    const subset = obj(s);
    if (!subset) {
      c.error(p, 'a subset must be a mapping with a name and labels');
      return;
    }
    const name = str(subset.name) ?? '';
    if (name === '') c.error([...p, 'name'], 'subset name is required (a DNS label such as v1)');
    else if (!isDnsLabel(name)) c.error([...p, 'name'], `subset name ${quote(name)} is not valid: it must be a DNS label (letters, digits and '-', at most 63)`);
    const first = seen.get(name);
    if (name !== '' && first !== undefined) c.error([...p, 'name'], `duplicate subset name ${quote(name)} (also spec.subsets[${first}]): subset names must be unique`);
    else seen.set(name, i);
    checkLabels(c, [...p, 'labels'], subset.labels);
    checkTrafficPolicy(c, [...p, 'trafficPolicy'], subset.trafficPolicy);
  });

  checkExportTo(c, ['spec', 'exportTo'], c.r.metadata.namespace, spec.exportTo, { drWithSelector: isSet(spec, 'workloadSelector') });
  checkSelector(c, ['spec', 'workloadSelector'], spec.workloadSelector, 'matchLabels', 'DestinationRule');
}

const POLICY_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'];

export function checkTrafficPolicy(c: Checker, p: Path, value: unknown): void {
  const tp = obj(value);
  if (!tp) return;
  if (!POLICY_FIELDS.some((f) => isSet(tp, f))) {
    c.error(p, `a trafficPolicy must set at least one of ${POLICY_FIELDS.join(', ')}`);
    return;
  }
  if (isSet(tp, 'tunnel') && isSet(tp, 'proxyProtocol')) c.error([...p, 'proxyProtocol'], 'tunnel and proxyProtocol cannot be set together');
  checkOutlierDetection(c, [...p, 'outlierDetection'], obj(tp.outlierDetection));
  checkConnectionPool(c, [...p, 'connectionPool'], tp.connectionPool);
  checkLoadBalancer(c, [...p, 'loadBalancer'], obj(tp.loadBalancer), isSet(tp, 'outlierDetection'));
  checkClientTls(c, [...p, 'tls'], obj(tp.tls));
  checkTunnel(c, [...p, 'tunnel'], obj(tp.tunnel));

  const ports = new Map<number, number>();
  list(tp.portLevelSettings).forEach((s, i) => {
    const sp = [...p, 'portLevelSettings', i];
    const pl = obj(s);
    if (!pl) return;
    const port = obj(pl.port);
    const number = num(port?.number);
    if (!port || number === undefined) {
      c.error([...sp, 'port'], 'each portLevelSettings entry needs port.number (1..65535)');
    } else if (c.check([...sp, 'port', 'number'], portProblem(number))) {
      const first = ports.get(number);
      if (first !== undefined) c.warn([...sp, 'port', 'number'], `port ${number} already has settings in portLevelSettings[${first}]: list each port once`);
      else ports.set(number, i);
    }
    if (!['outlierDetection', 'connectionPool', 'loadBalancer', 'tls'].some((f) => isSet(pl, f))) {
      c.error(sp, 'a portLevelSettings entry must set at least one of loadBalancer, connectionPool, outlierDetection, tls');
      return;
    }
    checkOutlierDetection(c, [...sp, 'outlierDetection'], obj(pl.outlierDetection));
    checkConnectionPool(c, [...sp, 'connectionPool'], pl.connectionPool);
    checkLoadBalancer(c, [...sp, 'loadBalancer'], obj(pl.loadBalancer), isSet(pl, 'outlierDetection'));
    checkClientTls(c, [...sp, 'tls'], obj(pl.tls));
  });
}

function nonNegative(c: Checker, p: Path, o: Obj, fields: string[]): void {
  for (const f of fields) {
    const n = num(wrapped(o[f]));
    if (n !== undefined && n < 0) c.error([...p, f], `${f} ${n} must not be negative`);
  }
}

function durations(c: Checker, p: Path, o: Obj, fields: string[]): void {
  for (const f of fields) if (isSet(o, f)) c.check([...p, f], durationProblem(o[f], f));
}

export function checkConnectionPool(c: Checker, p: Path, value: unknown): void {
  const pool = obj(value);
  if (!pool) return;
  const http = obj(pool.http);
  const tcp = obj(pool.tcp);
  if (!http && !tcp) {
    c.error(p, 'a connectionPool must set tcp and/or http');
    return;
  }
  if (http) {
    const hp = [...p, 'http'];
    nonNegative(c, hp, http, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams']);
    durations(c, hp, http, ['idleTimeout']);
    if (str(http.h2UpgradePolicy) === 'UPGRADE' && http.useClientProtocol === true) {
      c.error([...hp, 'useClientProtocol'], 'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE');
    }
    const ka = obj(http.http2KeepAlive);
    if (ka) {
      for (const f of ['interval', 'timeout']) {
        if (!isSet(ka, f)) c.error([...hp, 'http2KeepAlive', f], `http2KeepAlive.${f} is required (e.g. 30s)`);
        else c.check([...hp, 'http2KeepAlive', f], durationProblem(ka[f], f));
      }
    }
  }
  if (tcp) {
    const tp = [...p, 'tcp'];
    nonNegative(c, tp, tcp, ['maxConnections']);
    durations(c, tp, tcp, ['connectTimeout', 'maxConnectionDuration']);
    if (isSet(tcp, 'idleTimeout') && str(tcp.idleTimeout) !== '0s' && str(tcp.idleTimeout) !== '0') {
      c.check([...tp, 'idleTimeout'], durationProblem(tcp.idleTimeout, 'idleTimeout'));
    }
    const ka = obj(tcp.tcpKeepalive);
    if (ka) durations(c, [...tp, 'tcpKeepalive'], ka, ['time', 'interval']);
  }
}

function checkOutlierDetection(c: Checker, p: Path, od: Obj | undefined): void {
  if (!od) return;
  durations(c, p, od, ['baseEjectionTime', 'interval']);
  const consecutiveErrors = num(wrapped(od.consecutiveErrors));
  if (consecutiveErrors !== undefined && consecutiveErrors !== 0) {
    c.warn([...p, 'consecutiveErrors'], 'consecutiveErrors is deprecated: use consecutive5xxErrors or consecutiveGatewayErrors');
  }
  const localOrigin = num(wrapped(od.consecutiveLocalOriginFailures));
  if (localOrigin !== undefined && localOrigin > 0 && od.splitExternalLocalOriginErrors !== true) {
    c.error([...p, 'consecutiveLocalOriginFailures'], 'consecutiveLocalOriginFailures has effect only with splitExternalLocalOriginErrors: true');
  }
  nonNegative(c, p, od, ['consecutive5xxErrors', 'consecutiveGatewayErrors']);
  c.check([...p, 'maxEjectionPercent'], percentIntProblem(od.maxEjectionPercent, 'maxEjectionPercent'));
  c.check([...p, 'minHealthPercent'], percentIntProblem(od.minHealthPercent, 'minHealthPercent'));
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0) return false;
  for (let f = 3; f * f <= n; f += 2) if (n % f === 0) return false;
  return true;
}

const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'];
const TOPOLOGY_LABELS = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

function checkLoadBalancer(c: Checker, p: Path, lb: Obj | undefined, hasOutlier: boolean): void {
  if (!lb) return;
  if (isSet(lb, 'simple') && isSet(lb, 'consistentHash')) c.error([...p, 'consistentHash'], 'a loadBalancer has either simple or consistentHash, not both');
  const ch = obj(lb.consistentHash);
  if (ch) {
    const cp = [...p, 'consistentHash'];
    const keys = HASH_KEYS.filter((k) => isSet(ch, k));
    if (keys.length > 1) c.error(cp, `consistentHash takes exactly one of ${HASH_KEYS.join(', ')} (got ${keys.join(' and ')})`);
    else if (keys.length === 0) c.warn(cp, `consistentHash has no hash key (${HASH_KEYS.join(', ')}): requests will not stick to a host`);
    const cookie = obj(ch.httpCookie);
    if (cookie) {
      if (!str(cookie.name)) c.error([...cp, 'httpCookie', 'name'], 'httpCookie needs a name');
      const names = new Set<string>();
      list(cookie.attributes).forEach((a, i) => {
        const name = str(obj(a)?.name) ?? '';
        if (name === '') c.error([...cp, 'httpCookie', 'attributes', i, 'name'], 'a cookie attribute needs a name');
        else if (names.has(name)) c.error([...cp, 'httpCookie', 'attributes', i, 'name'], `duplicate cookie attribute ${quote(name)}`);
        names.add(name);
      });
    }
    const minRing = num(ch.minimumRingSize);
    if (minRing !== undefined && minRing !== 0) {
      c.warn([...cp, 'minimumRingSize'], 'minimumRingSize is deprecated: use ringHash.minimumRingSize');
      if (isSet(ch, 'ringHash') || isSet(ch, 'maglev')) c.error([...cp, 'minimumRingSize'], 'set either minimumRingSize or ringHash/maglev, not both');
    }
    if (isSet(ch, 'ringHash') && isSet(ch, 'maglev')) c.error([...cp, 'maglev'], 'consistentHash takes either ringHash or maglev, not both');
    const maglev = obj(ch.maglev);
    if (maglev) {
      const size = num(maglev.tableSize) ?? 0;
      const mp = [...cp, 'maglev', 'tableSize'];
      if (size === 0) c.error(mp, 'maglev needs tableSize: a prime number below 5000011 (e.g. 65537)');
      else if (size >= 5000011) c.error(mp, `maglev tableSize ${size} must be less than 5000011`);
      else if (!isPrime(size)) c.error(mp, `maglev tableSize ${size} must be a prime number (e.g. 65537)`);
    }
  }
  checkLocality(c, [...p, 'localityLbSetting'], obj(lb.localityLbSetting), hasOutlier);
  if (isSet(lb, 'warmupDurationSecs')) c.check([...p, 'warmupDurationSecs'], durationProblem(lb.warmupDurationSecs, 'warmupDurationSecs'));
  const warmup = obj(lb.warmup);
  if (warmup) {
    if (!isSet(warmup, 'duration')) c.error([...p, 'warmup', 'duration'], 'warmup needs a duration (e.g. 60s)');
    else c.check([...p, 'warmup', 'duration'], durationProblem(warmup.duration, 'warmup duration'));
    const min = num(wrapped(warmup.minimumPercent));
    if (min !== undefined && min > 100) c.error([...p, 'warmup', 'minimumPercent'], `minimumPercent ${min} must be at most 100`);
    const aggression = num(wrapped(warmup.aggression));
    if (aggression !== undefined && aggression <= 0) c.error([...p, 'warmup', 'aggression'], `aggression ${aggression} must be greater than 0`);
  }
}

function checkLocality(c: Checker, p: Path, loc: Obj | undefined, hasOutlier: boolean): void {
  if (!loc) return;
  const distribute = list(loc.distribute);
  const failover = list(loc.failover);
  if (distribute.length > 0 && failover.length > 0) {
    c.error(p, 'localityLbSetting takes either distribute or failover, not both');
    return;
  }
  if (failover.length > 0) {
    for (const [i, label] of strings(loc.failoverPriority)) {
      if (TOPOLOGY_LABELS.has(label)) c.error([...p, 'failoverPriority', i], `failover cannot be combined with the topology label ${label} in failoverPriority`);
    }
  }
  distribute.forEach((d, i) => {
    const dp = [...p, 'distribute', i];
    let total = 0;
    for (const [loc2, w] of entries(obj(d)?.to)) {
      const weight = num(w) ?? 0;
      if (weight <= 0 || weight > 100) c.error([...dp, 'to', loc2], `locality weight ${weight} must be in the range 1..100`);
      total += weight;
    }
    if (total !== 100) c.error([...dp, 'to'], `locality weights must add up to 100 (got ${total})`);
    const from = str(obj(d)?.from);
    if (from !== undefined) c.check([...dp, 'from'], localityProblem(from));
    for (const [loc2] of entries(obj(d)?.to)) c.check([...dp, 'to', loc2], localityProblem(loc2));
  });
  if ((failover.length > 0 || strings(loc.failoverPriority).length > 0) && !hasOutlier) {
    c.warn(p, 'failover needs an outlierDetection policy to detect unhealthy endpoints; add trafficPolicy.outlierDetection');
  }
  failover.forEach((f, i) => {
    const fp = [...p, 'failover', i];
    const from = str(obj(f)?.from) ?? '';
    const to = str(obj(f)?.to) ?? '';
    if (from === to) c.error(fp, 'a failover entry must name two different regions in from and to');
    if (from.includes('/') || to.includes('/')) c.error(fp, 'failover takes regions only (e.g. us-east), not zones');
    if (from.includes('*') || to.includes('*')) c.error(fp, 'failover regions cannot contain the wildcard *');
  });
}

function localityProblem(locality: string): string | undefined {
  const stars = locality.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) return `locality ${quote(locality)}: a wildcard * may appear once, at the end`;
  if (locality.split('/').some((part) => part === '')) return `locality ${quote(locality)} must be region[/zone[/subzone]] without empty parts`;
  return undefined;
}

function checkClientTls(c: Checker, p: Path, tls: Obj | undefined): void {
  if (!tls) return;
  const mode = str(tls.mode) ?? 'DISABLE';
  const has = (f: string): boolean => Boolean(str(tls[f]));
  const credential = has('credentialName');
  if (wrapped(tls.insecureSkipVerify) === true) {
    if (mode === 'SIMPLE' && (has('caCertificates') || credential || isSet(tls, 'subjectAltNames'))) {
      c.error([...p, 'insecureSkipVerify'], 'insecureSkipVerify cannot be combined with caCertificates, credentialName or subjectAltNames');
    }
    if (mode === 'MUTUAL' && (has('caCertificates') || isSet(tls, 'subjectAltNames'))) {
      c.error([...p, 'insecureSkipVerify'], 'insecureSkipVerify cannot be combined with caCertificates or subjectAltNames');
    }
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && credential) {
    const extra = ['clientCertificate', 'caCertificates', 'privateKey', 'caCrl'].filter(has);
    if (extra.length > 0) c.error([...p, extra[0] ?? 'credentialName'], `${extra.join(', ')} cannot be set with credentialName: the credential provides the certificates`);
    return;
  }
  if (mode === 'MUTUAL') {
    if (!has('clientCertificate')) c.error([...p, 'clientCertificate'], 'tls mode MUTUAL needs clientCertificate and privateKey (or a credentialName)');
    if (!has('privateKey')) c.error([...p, 'privateKey'], 'tls mode MUTUAL needs privateKey and clientCertificate (or a credentialName)');
  }
}

function checkTunnel(c: Checker, p: Path, tunnel: Obj | undefined): void {
  if (!tunnel) return;
  const protocol = str(tunnel.protocol);
  if (protocol && protocol !== 'CONNECT' && protocol !== 'POST') c.error([...p, 'protocol'], `tunnel protocol ${quote(protocol)} is not valid: use CONNECT or POST`);
  const host = str(tunnel.targetHost) ?? '';
  if (fqdnProblem(host) !== undefined && !isIPAddress(host)) c.error([...p, 'targetHost'], `tunnel targetHost ${quote(host)} must be a DNS name or an IP address`);
  const port = num(tunnel.targetPort);
  if (port === undefined) c.error([...p, 'targetPort'], 'tunnel targetPort is required (1..65535)');
  else c.check([...p, 'targetPort'], portProblem(port, 'tunnel targetPort'));
}
