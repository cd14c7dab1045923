// Finds *.test.ts under src/ and tests/ and runs them with node's test runner (through tsx).
// Usage: node scripts/run-tests.mjs [unit|integration] [name-filter]
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [kind, filter] = process.argv.slice(2);
const walk = (d) => readdirSync(d).flatMap((f) => {
  const p = join(d, f);
  return statSync(p).isDirectory() ? (f === 'node_modules' ? [] : walk(p)) : f.endsWith('.test.ts') ? [p] : [];
});
let files = [];
if (kind !== 'integration') files.push(...walk(join(root, 'src')));
if (kind !== 'unit') files.push(...walk(join(root, 'tests')));
if (filter) files = files.filter((f) => f.includes(filter));
files = files.map((f) => relative(root, f)).sort();
console.log(`running ${files.length} test files`);
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
