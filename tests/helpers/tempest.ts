import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cleanEnv } from './cloud.ts';

const run = promisify(execFile);
const here = new URL('../tempest/', import.meta.url).pathname;

export interface TempestResult {
  passed: string[];
  failed: string[];
  skipped: string[];
  /** Failures no line of the unsupported list explains. */
  unexpected: string[];
  /** For each unexpected failure: its traceback and any server fault it saw (the whole log stays in the workspace). */
  details: string;
  workspace: string;
  minutes: string;
  summary: string;
}

/**
 * Run Debian's tempest in a fresh workspace: `conf` (a template under tests/tempest/ with
 * @KEY@ placeholders filled from `vars`), the tests matching `regex`, then classify every
 * failure against `unsupported` (a file of regexes, one per line, `#` comments).
 */
export async function runTempest(opts: {
  label: string; conf: string; vars: Record<string, string>; regex: string; unsupported: string; timeoutMs?: number;
  /**
   * Debian's tempest sleeps 10 s in every SubnetsClient.delete_subnet (its comment: "avoids
   * failures when it takes time to teardown some ports" — Neutron's agents tear ports down
   * asynchronously; Gureum's API deletes them within the request). With this set, the
   * tempest processes load a usercustomize hook that drops that sleep and nothing else, so
   * the network tests' hundreds of subnet deletes do not cost 10 s each.
   */
  noSubnetDeleteSleep?: boolean;
}): Promise<TempestResult> {
  const top = mkdtempSync(join(tmpdir(), `tempest-${opts.label}-`));
  const ws = join(top, 'ws');
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), PATH: `/usr/bin:${process.env.PATH ?? ''}` };
  if (opts.noSubnetDeleteSleep) {
    const userBase = join(top, 'pyuser');
    const site = join(userBase, 'lib', `python${await pythonVersion(env)}`, 'site-packages');
    mkdirSync(site, { recursive: true });
    writeFileSync(join(site, 'usercustomize.py'), NO_SUBNET_DELETE_SLEEP);
    env.PYTHONUSERBASE = userBase;
  }
  // Workspaces are registered by name in ~/.tempest; a unique name keeps runs apart.
  await run('tempest', ['init', '--name', `gureum-${opts.label}-${top.slice(-6)}`, ws], { env });
  let conf = readFileSync(join(here, opts.conf), 'utf8');
  for (const [k, v] of Object.entries(opts.vars)) conf = conf.replaceAll(`@${k}@`, v);
  writeFileSync(join(ws, 'etc', 'tempest.conf'), conf);
  const started = Date.now();
  await run('tempest', ['run', '--regex', opts.regex, '--concurrency', '2'],
    { cwd: ws, env, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 0, killSignal: 'SIGINT' })
    .catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  // subunit2csv exits 1 when any test failed; the CSV is complete either way.
  const { stdout: csv } = await run('bash', ['-c', 'stestr last --subunit | subunit2csv || true'], { cwd: ws, env, maxBuffer: 64 * 1024 * 1024 });
  const rows = csv.trim().split(/\r?\n/).slice(1).map((l) => /^(?:"([^"]*)"|([^,]*)),(\w+),/.exec(l)).filter((m) => m !== null)
    .map((m) => ({ id: (m![1] ?? m![2]!).replace(/\[.*\]$/, ''), status: m![3]! }));
  const status = (s: string) => rows.filter((r) => r.status === s).map((r) => r.id);
  const passed = status('success');
  const failed = status('failure');
  const skipped = status('skip');
  const unsupported = readFileSync(join(here, opts.unsupported), 'utf8').split('\n')
    .map((l) => l.replace(/#.*/, '').trim()).filter(Boolean).map((r) => new RegExp(r));
  const unexpected = failed.filter((id) => !unsupported.some((r) => r.test(id)));
  const details = unexpected.length ? await failureDetails(ws, env, unexpected) : '';
  const ran = passed.length + failed.length;
  const summary = `tempest ${opts.label} (${minutes} min, workspace ${ws}): ${passed.length} passed, ${failed.length} failed ` +
    `(${failed.length - unexpected.length} of them unsupported features), ${skipped.length} skipped; ` +
    `${(100 * passed.length / Math.max(ran, 1)).toFixed(1)} % of the tests that ran passed`;
  return { passed, failed, skipped, unexpected, details, workspace: ws, minutes, summary };
}

async function pythonVersion(env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run('/usr/bin/python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { env });
  return stdout.trim();
}

/** Replaces SubnetsClient.delete_subnet, when tempest imports it, by the same call without Debian's time.sleep(10). */
const NO_SUBNET_DELETE_SLEEP = `# Written by Gureum's tests/helpers/tempest.ts (noSubnetDeleteSleep).
import importlib.abc
import importlib.util
import sys

_NAME = 'tempest.lib.services.network.subnets_client'


class _NoSubnetDeleteSleep(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _NAME:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)

            def delete_subnet(self, subnet_id):
                return self.delete_resource('/subnets/%s' % subnet_id)
            module.SubnetsClient.delete_subnet = delete_subnet
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _NoSubnetDeleteSleep())
`;

/** The traceback lines and distinct server faults of the given failed tests, from the last run's subunit stream. */
async function failureDetails(ws: string, env: NodeJS.ProcessEnv, ids: string[]): Promise<string> {
  const re = ids.map((id) => id.replace(/[.()[\]]/g, '\\$&')).join('|');
  const { stdout } = await run('bash', ['-c', `stestr last --subunit | subunit-filter -s --no-passthrough --with '${re}' | subunit2pyunit 2>&1 || true`],
    { cwd: ws, env, maxBuffer: 256 * 1024 * 1024 });
  const out: string[] = [];
  for (const block of stdout.split(/^=+$/m).slice(1)) {
    const lines = block.split('\n');
    const head = lines.find((l) => /^(FAIL|ERROR): /.test(l));
    if (!head) continue;
    out.push(head);
    const tb = lines.findIndex((l) => l.startsWith('Traceback'));
    const end = lines.findIndex((l) => /^Ran \d+ tests? in/.test(l));
    if (tb >= 0) out.push(...lines.slice(tb, end > tb ? end : undefined).filter((l) => l.trim() && !/^-+$/.test(l)).slice(0, 30).map((l) => `    ${l}`));
    const faults = new Set([...block.matchAll(/"fault":\{[^}]*\}/g)].map((m) => m[0]));
    for (const f of faults) out.push(`    server fault: ${f}`);
  }
  return out.join('\n');
}

/** Print a run's summary, every failure (marked when the unsupported list explains it) and the details of unexpected ones; then require `minPassed` passes and no unexpected failure. */
export function reportTempest(r: TempestResult, minPassed: number): void {
  console.log(r.summary);
  for (const id of r.failed) console.log(`  failed${r.unexpected.includes(id) ? '' : ' (unsupported)'}: ${id}`);
  if (r.details) console.log(r.details);
  assert.ok(r.passed.length > minPassed, `tempest ran (${r.passed.length} passed)`);
  assert.deepEqual(r.unexpected, [], 'no failures beyond the documented unsupported features');
}
