// A configuration the sidecar cannot apply; its message becomes the NACK's error_detail.

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
