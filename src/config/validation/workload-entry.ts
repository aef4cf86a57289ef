// WorkloadEntry rules beyond the schema (address as IP, DNS name or unix socket; port names and numbers;
// labels), shared with ServiceEntry endpoints, which may also be checked against the entry's port names.
// Reports on the checker; never throws.

import { entries, isSet, num, quote, str, type Checker, type Obj, type Path } from './check.ts';
import { checkLabels, fqdnProblem, isDnsLabel, isIPAddress, portProblem, UNIX_PREFIX, unixAddressProblem } from './common.ts';

export function validateWorkloadEntry(c: Checker, spec: Obj): void {
  checkWorkloadEntry(c, ['spec'], spec, { allowHostname: true });
}

export interface EndpointRules {
  /** The ServiceEntry's port names, when checking one of its endpoints. */
  servicePorts?: ReadonlySet<string>;
  /** DNS names are accepted as addresses (WorkloadEntry, DNS resolution); STATIC wants IPs. */
  allowHostname: boolean;
}

export function checkWorkloadEntry(c: Checker, p: Path, we: Obj, rules: EndpointRules): void {
  const address = str(we.address) ?? '';
  let unix = false;
  if (address === '') {
    if (!str(we.network)) c.error([...p, 'address'], 'address is required: an IP address, a DNS name or unix:///path (it may be omitted only when network is set)');
    else c.warn([...p, 'address'], `address is unset: the workload is reached through the gateway of network ${quote(str(we.network) ?? '')}`);
  } else if (address.startsWith(UNIX_PREFIX)) {
    unix = true;
    c.check([...p, 'address'], unixAddressProblem(address.slice(UNIX_PREFIX.length)));
    if (isSet(we, 'ports') && entries(we.ports).length > 0) c.error([...p, 'ports'], `unix socket endpoint ${address} must not list ports`);
  } else if (!isIPAddress(address)) {
    if (!rules.allowHostname) c.error([...p, 'address'], `endpoint address ${quote(address)} is not an IP address: resolution STATIC needs IPs (use resolution DNS for host names)`);
    else if (fqdnProblem(address) !== undefined) c.error([...p, 'address'], `address ${quote(address)} is not a valid IP address or DNS name`);
  }
  for (const [name, port] of entries(we.ports)) {
    const pp = [...p, 'ports', name];
    if (rules.servicePorts && !rules.servicePorts.has(name)) {
      const known = [...rules.servicePorts].join(', ');
      c.error(pp, `endpoint port ${quote(name)} is not a port name of this ServiceEntry: use one of ${known || '(none declared)'}`);
    }
    if (!isDnsLabel(name)) c.error(pp, `port name ${quote(name)} is not valid: it must be a DNS label (letters, digits and '-')`);
    else if (num(port) !== undefined) c.check(pp, portProblem(port));
  }
  checkLabels(c, [...p, 'labels'], we.labels);
  if (unix && rules.servicePorts && rules.servicePorts.size !== 1) {
    c.error([...p, 'address'], `a unix socket endpoint needs a ServiceEntry with exactly one port (it has ${rules.servicePorts.size})`);
  }
}
