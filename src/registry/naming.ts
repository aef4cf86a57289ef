// Kubernetes-style generated names: pod-template-hash and the 5-character pod suffix, made
// deterministic (hashes instead of randomness) so the same input always yields the same pods.

/** Kubernetes' alphabet for generated names (no vowels, no confusable characters). */
export const KUBE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** 32-bit FNV-1a of a string's UTF-16 code units. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** JSON with object keys sorted, so equal objects give equal text whatever their key order. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Maps every character of `s` into the alphabet, as Kubernetes' SafeEncodeString does. */
function safeEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += KUBE_ALPHABET[s.charCodeAt(i) % KUBE_ALPHABET.length] ?? 'b';
  return out;
}

function fnvStep(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** FNV-1a over the stableJson text of `v`, computed without building the text. */
function hashValue(v: unknown, h: number): number {
  if (Array.isArray(v)) {
    h = fnvStep(h, '[');
    for (let i = 0; i < v.length; i++) {
      if (i > 0) h = fnvStep(h, ',');
      h = hashValue(v[i], h);
    }
    return fnvStep(h, ']');
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    h = fnvStep(h, '{');
    let first = true;
    for (const k of Object.keys(o).sort()) {
      if (o[k] === undefined) continue;
      if (!first) h = fnvStep(h, ',');
      first = false;
      h = fnvStep(h, JSON.stringify(k));
      h = fnvStep(h, ':');
      h = hashValue(o[k], h);
    }
    return fnvStep(h, '}');
  }
  return fnvStep(h, JSON.stringify(v) ?? 'null');
}

/**
 * The pod-template-hash of a Deployment's pod template: FNV-1a of the template, its decimal digits
 * encoded over the Kubernetes alphabet (as Kubernetes does), padded to at least 8 characters.
 */
export function podTemplateHash(template: unknown): string {
  const digits = String(hashValue(template, 0x811c9dc5) >>> 0);
  return safeEncode(digits.padStart(8, '0'));
}

/** A 5-character suffix over the Kubernetes alphabet, stable for `seed`. */
export function nameSuffix(seed: string): string {
  let h = fnv1a32(seed);
  let out = '';
  for (let i = 0; i < 5; i++) {
    out += KUBE_ALPHABET[h % KUBE_ALPHABET.length] ?? 'b';
    h = Math.floor(h / KUBE_ALPHABET.length);
    if (h === 0) h = fnv1a32(`${seed}#${i}`);
  }
  return out;
}
