// WorkloadGroup rules beyond the schema: a template is required, metadata labels are valid, and the
// readiness probe (httpGet, tcpSocket or exec) is well formed. Reports on the checker; never throws.

import { isSet, list, num, obj, quote, str, type Checker, type Obj } from './check.ts';
import { checkLabels, portProblem } from './common.ts';

const PROBE_HEADER = /^[-A-Za-z0-9]+$/;

export function validateWorkloadGroup(c: Checker, spec: Obj): void {
  if (!obj(spec.template)) c.error(['spec', 'template'], 'template is required: the WorkloadEntry fields (ports, serviceAccount, labels...) shared by the group');
  checkLabels(c, ['spec', 'metadata', 'labels'], obj(spec.metadata)?.labels);
  const probe = obj(spec.probe);
  if (!probe) return;
  const p = ['spec', 'probe'];
  for (const f of ['periodSeconds', 'initialDelaySeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold']) {
    const n = num(probe[f]);
    if (n !== undefined && n < 0) c.error([...p, f], `${f} ${n} must not be negative`);
  }
  const httpGet = obj(probe.httpGet);
  const tcpSocket = obj(probe.tcpSocket);
  const exec = obj(probe.exec);
  if (httpGet) {
    if (!isSet(httpGet, 'port')) c.error([...p, 'httpGet', 'port'], 'httpGet needs a port (1..65535)');
    else c.check([...p, 'httpGet', 'port'], portProblem(httpGet.port));
    const scheme = str(httpGet.scheme);
    if (scheme && scheme !== 'HTTP' && scheme !== 'HTTPS') c.error([...p, 'httpGet', 'scheme'], `httpGet scheme ${quote(scheme)} must be HTTP or HTTPS`);
    list(httpGet.httpHeaders).forEach((h, i) => {
      const name = str(obj(h)?.name) ?? '';
      if (!PROBE_HEADER.test(name)) c.error([...p, 'httpGet', 'httpHeaders', i, 'name'], `probe header name ${quote(name)} must be letters, digits and '-'`);
    });
  } else if (tcpSocket) {
    if (!isSet(tcpSocket, 'port')) c.error([...p, 'tcpSocket', 'port'], 'tcpSocket needs a port (1..65535)');
    else c.check([...p, 'tcpSocket', 'port'], portProblem(tcpSocket.port));
  } else if (exec) {
    if (list(exec.command).length === 0) c.error([...p, 'exec', 'command'], 'exec needs a command');
  } else {
    c.error(p, 'a probe needs one of httpGet, tcpSocket or exec');
  }
}
