// The one error telemetry raises: a configuration it cannot apply (bad access log format, unsupported access
// logger or filter). Raised only while compiling config, never per request; its message becomes the NACK detail.

export class TelemetryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TelemetryConfigError';
  }
}
