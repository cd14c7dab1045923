/**
 * Block storage figures against `gureum up` (as root), printed, never asserted:
 *
 *   node --import tsx bench/volume/run.ts [--small-mb 16] [--large-mb 1024] [--creates 5] [--io-seconds 10]
 *
 * 1. Create-from-image time (Cinder API call → volume available, polled every 50 ms over
 *    HTTP) for a small and a large raw image: the first volume of each image pays for
 *    fetching it into the host's image cache; every later one is a copy-on-write overlay,
 *    so its time should not grow with the image size.
 * 2. Disk I/O inside a guest on an attached volume against the same filesystem read and
 *    written by the host: fio (Debian's, carried into the guest on a second, read-only
 *    "tools" volume made with `mke2fs -d`, since the tiny guest has none) runs sequential
 *    1 MiB reads and writes and 4 KiB random reads and writes with O_DIRECT; the host runs
 *    the same jobs on a raw file in the pool's filesystem. The ratio guest/host is what the
 *    virtual disk path costs (under TCG: mostly the emulated guest CPU).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { api, passwordToken, startCloud } from '../../tests/helpers/cloud.ts';
import { computeTools, guestSsh, until } from '../../tests/helpers/compute.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: {
  'small-mb': { type: 'string', default: '16' }, 'large-mb': { type: 'string', default: '1024' },
  creates: { type: 'string', default: '5' }, 'io-seconds': { type: 'string', default: '10' },
} });
const CREATES = Number(values.creates);
const IO_SECONDS = Number(values['io-seconds']);

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; }

/** fio and the shared libraries it needs (with the loader), in `dir`: runnable anywhere as `dir/ld.so --library-path dir/lib dir/fio`. */
async function fioBundle(dir: string): Promise<void> {
  await run('sh', ['-c', 'command -v fio >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q fio >/dev/null']);
  const fio = (await run('sh', ['-c', 'command -v fio'])).stdout.trim();
  mkdirSync(join(dir, 'lib'), { recursive: true });
  copyFileSync(fio, join(dir, 'fio'));
  const { stdout } = await run('ldd', [fio]);
  for (const m of stdout.matchAll(/(\/\S+\.so[^\s]*)/g)) {
    const lib = m[1]!;
    copyFileSync(lib, join(dir, 'lib', basename(lib)));
    if (basename(lib).startsWith('ld-linux')) copyFileSync(lib, join(dir, 'ld.so'));
  }
}

interface FioResult { label: string; mbps: number; iops: number }
const JOBS = [
  { label: 'seq read 1M', rw: 'read', bs: '1M' },
  { label: 'seq write 1M', rw: 'write', bs: '1M' },
  { label: 'rand read 4K', rw: 'randread', bs: '4k' },
  { label: 'rand write 4K', rw: 'randwrite', bs: '4k' },
];
const fioArgs = (file: string, job: typeof JOBS[number]) =>
  `--name=b --filename=${file} --rw=${job.rw} --bs=${job.bs} --size=512M --direct=1 --ioengine=psync --time_based --runtime=${IO_SECONDS} --output-format=json`;
function parseFio(label: string, out: string): FioResult {
  const j = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: { read: { bw_bytes: number; iops: number }; write: { bw_bytes: number; iops: number } }[] };
  const r = j.jobs[0]!;
  const side = r.read.bw_bytes > 0 ? r.read : r.write;
  return { label, mbps: side.bw_bytes / 1e6, iops: side.iops };
}

const cloud = await startCloud();
const t = computeTools(cloud);
const scratch = mkdtempSync(join(tmpdir(), 'bench-volume-'));
try {
  const project = (await t.json<{ id: string }>('project', 'show', String(cloud.env.OS_PROJECT_NAME ?? 'admin'))).id;
  const scoped = await passwordToken(cloud, { name: 'admin', password: cloud.password }, project);
  const base = `/volume/v3/${project}`;
  async function timedCreate(imageId: string, sizeGb: number): Promise<{ ms: number; id: string }> {
    const t0 = process.hrtime.bigint();
    const r = await api(cloud, 'POST', `${base}/volumes`, { token: scoped, body: { volume: { size: sizeGb, imageRef: imageId } } });
    if (r.status !== 202) throw new Error(`volume create: ${r.status} ${r.text}`);
    const id = String(r.json.volume.id);
    for (;;) {
      const s = await api(cloud, 'GET', `${base}/volumes/${id}`, { token: scoped });
      const status = String(s.json.volume.status);
      if (status === 'available') break;
      if (status.startsWith('error')) throw new Error(`volume ${id} went to ${status}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, id };
  }

  // 1. create from image
  console.log('create-from-image (API call → available):');
  const made: string[] = [];
  for (const mb of [Number(values['small-mb']), Number(values['large-mb'])]) {
    const file = join(scratch, `img-${mb}.raw`);
    await run('sh', ['-c', `head -c ${mb}M /dev/urandom > ${file}`]);
    const img = await t.json<{ id: string }>('image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--file', file, `bench-${mb}`);
    rmSync(file);
    const size = Math.max(1, Math.ceil(mb / 1024));
    const first = await timedCreate(img.id, size);
    made.push(first.id);
    const warm: number[] = [];
    for (let i = 0; i < CREATES; i++) { const c = await timedCreate(img.id, size); warm.push(c.ms); made.push(c.id); }
    console.log(`  ${String(mb).padStart(5)} MiB image: first ${first.ms.toFixed(0)} ms (fills the host's image cache), then median ${median(warm).toFixed(0)} ms (n=${warm.length}, min ${Math.min(...warm).toFixed(0)}, max ${Math.max(...warm).toFixed(0)})`);
  }
  for (const id of made) await api(cloud, 'DELETE', `${base}/volumes/${id}`, { token: scoped });

  // 2. guest vs host I/O
  const tools = join(scratch, 'tools');
  await fioBundle(tools);
  const toolsImg = join(scratch, 'tools.img');
  await run('mke2fs', ['-q', '-t', 'ext2', '-d', tools, toolsImg, '256M']);
  const toolsImage = await t.json<{ id: string }>('image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--file', toolsImg, 'bench-tools');
  const key = join(scratch, 'key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await t.os('keypair', 'create', '--public-key', `${key}.pub`, 'bench');
  const net = await t.json<{ id: string }>('network', 'create', 'benchnet');
  await t.os('subnet', 'create', '--network', 'benchnet', '--subnet-range', '10.89.0.0/24', 'benchsub');
  const sg = await t.json<{ id: string }>('security', 'group', 'create', 'bench');
  await t.os('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', sg.id);
  const vm = await t.json<{ id: string }>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.micro', '--key-name', 'bench',
    '--network', 'benchnet', '--security-group', 'bench', 'bench-io');
  const up = await t.waitStatus(vm.id, 'ACTIVE', 300_000);
  const ip = (up.addresses as Record<string, string[]>).benchnet![0]!;
  const ns = `qdhcp-${net.id}`;
  const sh = async (cmd: string, timeoutMs = 600_000) => {
    const r = await guestSsh(key, ip, cmd, { ns, timeoutMs });
    if (!r.ok) throw new Error(`guest: ${cmd}: ${r.out}`);
    return r.out;
  };
  await until('SSH into the guest', async () => (await guestSsh(key, ip, 'true', { ns })).ok, 300_000, 2000);
  const toolsVol = await t.json<{ id: string }>('volume', 'create', '--image', toolsImage.id, '--size', '1', 'bench-tools');
  const dataVol = await t.json<{ id: string }>('volume', 'create', '--size', '1', 'bench-data');
  for (const id of [toolsVol.id, dataVol.id]) {
    await until(`volume ${id} available`, async () => (await t.json<{ status: string }>('volume', 'show', id)).status === 'available', 300_000, 500);
    await t.os('server', 'add', 'volume', vm.id, id);
    await until(`volume ${id} in-use`, async () => (await t.json<{ status: string }>('volume', 'show', id)).status === 'in-use', 120_000, 500);
  }
  await until('both disks in the guest', async () => /vdb[\s\S]*vdc/.test(await sh('ls /sys/block')), 60_000, 1000);
  await sh('mkdir -p /t && mount -o ro /dev/vdb /t');
  // fill the data disk once so reads read data, not holes
  await sh('dd if=/dev/zero of=/dev/vdc bs=1M count=512 oflag=direct 2>/dev/null; true');
  const guest: FioResult[] = [];
  for (const job of JOBS) guest.push(parseFio(job.label, await sh(`/t/ld.so --library-path /t/lib /t/fio ${fioArgs('/dev/vdc', job)}`)));

  const poolDir = join(cloud.dir, 'data', 'agent', 'volumes');
  mkdirSync(poolDir, { recursive: true });
  const hostFile = join(poolDir, 'bench-host.raw');
  await run('sh', ['-c', `dd if=/dev/zero of=${hostFile} bs=1M count=512 oflag=direct 2>/dev/null`]);
  const host: FioResult[] = [];
  for (const job of JOBS) host.push(parseFio(job.label, (await run('sh', ['-c', `fio ${fioArgs(hostFile, job)}`], { maxBuffer: 16 << 20 })).stdout));
  rmSync(hostFile);

  console.log(`disk I/O, O_DIRECT, psync, ${IO_SECONDS} s per job (guest: virtio-blk on a qcow2 volume; host: a raw file in the same filesystem):`);
  console.log('  job              guest MB/s   guest IOPS   host MB/s    host IOPS    guest/host');
  for (let i = 0; i < JOBS.length; i++) {
    const g = guest[i]!; const h = host[i]!;
    console.log(`  ${g.label.padEnd(15)}  ${g.mbps.toFixed(1).padStart(9)}  ${g.iops.toFixed(0).padStart(11)}  ${h.mbps.toFixed(1).padStart(9)}  ${h.iops.toFixed(0).padStart(11)}  ${(g.iops / h.iops).toFixed(3).padStart(10)}`);
  }
  const accel = (await t.json<{ 'Hypervisor Type': string }[]>('hypervisor', 'list', '--long')).map((h) => h['Hypervisor Type']).join(',');
  console.log(`  (hypervisor: ${accel}; under TCG the guest's emulated CPU bounds its I/O rate)`);
} finally {
  await cloud.stop();
  rmSync(scratch, { recursive: true, force: true });
}
