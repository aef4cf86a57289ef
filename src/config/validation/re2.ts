// Checks that a regular expression is valid RE2, the syntax Envoy and Istio use: rejects what RE2
// lacks (lookaround, backreferences, unknown escapes, repeat counts over 1000) and anything that does
// not parse, by translating RE2-only syntax to a JavaScript pattern and compiling it. Never throws.

const POSIX_CLASSES = new Set(['alnum', 'alpha', 'ascii', 'blank', 'cntrl', 'digit', 'graph', 'lower', 'print', 'punct', 'space', 'upper', 'word', 'xdigit']);
/** Letters RE2 accepts after a backslash (besides p/P/Q/E/z/A/C, handled apart). */
const LETTER_ESCAPES = 'aftnrvdDsSwWbBx';
const MAX_LENGTH = 1024;
const MAX_REPEAT = 1000;

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** A sentence saying why `pattern` is not valid RE2, or undefined when it is. */
export function re2Problem(pattern: string): string | undefined {
  if (pattern.length > MAX_LENGTH) return `it is too long (${pattern.length} characters; at most ${MAX_LENGTH})`;
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern.charAt(i);
    if (ch === '\\') {
      const next = pattern.charAt(i + 1);
      if (next === '') return 'it ends with a lone backslash';
      if (/[1-9]/.test(next) && !/[0-9]/.test(pattern.charAt(i + 2))) return `backreferences (\\${next}) are not supported`;
      if (next === 'k' && pattern.charAt(i + 2) === '<') return 'named backreferences (\\k<name>) are not supported';
      if (next === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        out += escapeLiteral(end < 0 ? pattern.slice(i + 2) : pattern.slice(i + 2, end));
        i = end < 0 ? pattern.length : end + 1;
        continue;
      }
      if (next === 'z' || next === 'A' || next === 'C') {
        if (inClass) return `escape \\${next} is not allowed in a character class`;
        out += next === 'z' ? '$' : next === 'A' ? '^' : '.';
        i++;
        continue;
      }
      if (next === 'p' || next === 'P') {
        let j = i + 2;
        let name: string;
        if (pattern.charAt(j) === '{') {
          const end = pattern.indexOf('}', j);
          if (end < 0) return 'a \\p{...} Unicode class is not closed';
          name = pattern.slice(j + 1, end).replace(/^\^/, '');
          j = end;
        } else {
          name = pattern.charAt(j);
        }
        if (!/^[A-Za-z_]+$/.test(name)) return `invalid Unicode class \\${next}{${name}}`;
        out += next === 'p' ? '\\w' : '\\W'; // stands in for the class: only the syntax is checked
        i = j;
        continue;
      }
      if (next === 'x' && pattern.charAt(i + 2) === '{') {
        const end = pattern.indexOf('}', i + 3);
        const hex = end < 0 ? '' : pattern.slice(i + 3, end);
        if (!/^[0-9A-Fa-f]{1,6}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) return 'invalid \\x{...} escape: write 1 to 6 hex digits up to 10FFFF';
        out += 'x';
        i = end;
        continue;
      }
      if (/[A-Za-z]/.test(next) && !LETTER_ESCAPES.includes(next)) return `invalid escape sequence \\${next}`;
      out += ch + next;
      i++;
      continue;
    }
    if (inClass) {
      if (ch === '[' && pattern.charAt(i + 1) === ':') {
        const end = pattern.indexOf(':]', i + 2);
        if (end > 0) {
          const name = pattern.slice(i + 2, end).replace(/^\^/, '');
          if (!POSIX_CLASSES.has(name)) return `invalid character class [:${name}:]; POSIX classes are ${[...POSIX_CLASSES].join(', ')}`;
          out += '\\w';
          i = end + 1;
          continue;
        }
      }
      if (ch === ']') inClass = false;
      out += ch === '[' ? '\\[' : ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += '[';
      if (pattern.charAt(i + 1) === '^') {
        out += '^';
        i++;
      }
      if (pattern.charAt(i + 1) === ']') {
        out += '\\]'; // RE2: a ']' first in a class is a literal
        i++;
      }
      continue;
    }
    if (ch === '(' && pattern.charAt(i + 1) === '?') {
      const rest = pattern.slice(i + 2);
      if (/^(?:=|!|<=|<!)/.test(rest)) return 'lookahead and lookbehind ((?=...), (?!...), (?<=...), (?<!...)) are not supported';
      if (rest.startsWith('P=') || rest.startsWith('P>')) return 'named backreferences and recursion are not supported';
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 3;
        continue;
      }
      if (rest.startsWith('<') || rest.startsWith(':')) {
        out += '(?' + rest.charAt(0);
        i += 2;
        continue;
      }
      const flags = /^([imsU]*(?:-[imsU]*)?)([:)])/.exec(rest);
      if (flags && flags[1] !== '' && flags[1] !== '-' && !flags[1]?.endsWith('-')) {
        if (flags[2] === ':') out += '(?:';
        i += 1 + flags[0].length;
        continue;
      }
      return `invalid group syntax "(?${rest.slice(0, 3)}": RE2 allows (?:...), (?P<name>...), (?<name>...) and flags such as (?i)`;
    }
    if (ch === '{') {
      const rep = /^\{([0-9]+)(?:(,)([0-9]*))?\}/.exec(pattern.slice(i));
      if (rep) {
        const min = Number(rep[1]);
        const max = rep[3] ? Number(rep[3]) : min;
        if (min > MAX_REPEAT || max > MAX_REPEAT) return `repeat count ${rep[0]} is too large (at most ${MAX_REPEAT})`;
      }
    }
    out += ch;
  }
  if (inClass) return 'a character class [ is not closed with ]';
  try {
    new RegExp(out);
  } catch (err) {
    const msg = (err as Error).message;
    const reason = msg.slice(msg.lastIndexOf(': ') + 2);
    return reason.charAt(0).toLowerCase() + reason.slice(1);
  }
  return undefined;
}
