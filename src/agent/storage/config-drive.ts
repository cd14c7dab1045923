/**
 * The config drive: an ISO 9660 image labelled `config-2` carrying the OpenStack
 * metadata, laid out as Nova's configdrive.py writes it (openstack/<version>/… for each
 * metadata version plus `latest`, optionally ec2/…), built with genisoimage with Nova's
 * flags. No loop mount is needed (this host's kernel has no iso9660 driver anyway).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The dated OpenStack metadata versions written besides `latest` (Nova's newest ones). */
export const OPENSTACK_VERSIONS = ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30', '2016-10-06', '2017-02-22', '2018-08-27'];

export interface ConfigDriveContent {
  /** openstack/<v>/meta_data.json (uuid, name, hostname, public_keys, launch_index, ...). */
  metaData: Record<string, unknown>;
  userData?: Buffer;
  networkData?: Record<string, unknown>;
  vendorData?: Record<string, unknown>;
  /** ec2/latest/meta-data.json and ec2/2009-04-04/meta-data.json when given. */
  ec2MetaData?: Record<string, unknown>;
}

export async function buildConfigDrive(dest: string, c: ConfigDriveContent): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'configdrive-'));
  try {
    const root = join(work, 'root');
    for (const v of [...OPENSTACK_VERSIONS, 'latest']) {
      const d = join(root, 'openstack', v);
      await mkdir(d, { recursive: true });
      await writeFile(join(d, 'meta_data.json'), JSON.stringify(c.metaData));
      if (c.userData) await writeFile(join(d, 'user_data'), c.userData);
      // network_data.json and vendor_data.json appeared in 2015-10-15.
      if (v >= '2015-10-15' || v === 'latest') {
        await writeFile(join(d, 'vendor_data.json'), JSON.stringify(c.vendorData ?? {}));
        if (c.networkData) await writeFile(join(d, 'network_data.json'), JSON.stringify(c.networkData));
      }
      if (v >= '2016-10-06' || v === 'latest') await writeFile(join(d, 'vendor_data2.json'), JSON.stringify({}));
    }
    if (c.ec2MetaData) {
      for (const v of ['2009-04-04', 'latest']) {
        const d = join(root, 'ec2', v);
        await mkdir(d, { recursive: true });
        await writeFile(join(d, 'meta-data.json'), JSON.stringify(c.ec2MetaData));
        if (c.userData) await writeFile(join(d, 'user-data'), c.userData);
      }
    }
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.part`;
    try {
      await run('genisoimage', ['-o', tmp, '-ldots', '-allow-lowercase', '-allow-multidot', '-l', '-publisher', 'Gureum',
        '-quiet', '-J', '-r', '-V', 'config-2', root]);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      await rm(tmp, { force: true });
      if (err.code === 'ENOENT') throw new Error('genisoimage is not installed (Debian package genisoimage)');
      throw new Error(`building the config drive failed: ${(err.stderr ?? err.message).trim()}`);
    }
    await rename(tmp, dest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
