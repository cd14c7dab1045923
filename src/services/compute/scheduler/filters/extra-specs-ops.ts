/**
 * Nova's extra-spec matching operators (as used by the aggregate and capabilities
 * filters), compiled once per requirement:
 *   "= 4" (value >= 4), "== 4", "!= 4", ">= 4", "<= 4" (numeric),
 *   "s== a", "s!= a", "s< a", "s<= a", "s> a", "s>= a" (string),
 *   "<in> sub" (substring), "<all-in> a b" (every word a substring),
 *   "<or> a <or> b" (one of), anything else: exact string equality.
 */
export type ValueMatcher = (value: string) => boolean;

function num(x: string): number {
  const t = x.trim();
  return t === '' ? NaN : Number(t);
}

export function compileMatcher(req: string): ValueMatcher {
  const words = req.split(/\s+/).filter((w) => w !== '');
  const op = words[0];
  const arg = words[1];
  switch (op) {
    case '<or>': {
      const options = new Set<string>();
      for (let i = 1; i < words.length; i += 2) options.add(words[i]);
      return (v) => options.has(v);
    }
    case '<all-in>': {
      const parts = words.slice(1);
      if (parts.length === 0) return () => false;
      return (v) => parts.every((p) => v.includes(p));
    }
    case '<in>':
      return arg === undefined ? () => false : (v) => v.includes(arg);
    case '=': case '==': case '!=': case '>=': case '<=': {
      if (arg === undefined) return () => false;
      const want = num(arg);
      if (Number.isNaN(want)) return () => false;
      if (op === '=' || op === '>=') return (v) => num(v) >= want;
      if (op === '==') return (v) => num(v) === want;
      if (op === '!=') return (v) => { const n = num(v); return !Number.isNaN(n) && n !== want; };
      return (v) => num(v) <= want;
    }
    case 's==': return arg === undefined ? () => false : (v) => v === arg;
    case 's!=': return arg === undefined ? () => false : (v) => v !== arg;
    case 's<': return arg === undefined ? () => false : (v) => v < arg;
    case 's<=': return arg === undefined ? () => false : (v) => v <= arg;
    case 's>': return arg === undefined ? () => false : (v) => v > arg;
    case 's>=': return arg === undefined ? () => false : (v) => v >= arg;
    default:
      return (v) => v === req;
  }
}
