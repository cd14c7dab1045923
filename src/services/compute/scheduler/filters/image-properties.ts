/**
 * ImagePropertiesFilter: the host must support the image's architecture
 * (`hw_architecture`, legacy `architecture`), hypervisor type (`img_hv_type`, legacy
 * `hypervisor_type`) and VM mode (`hw_vm_mode`, legacy `vm_mode`), each canonicalised as
 * Nova does ('amd64' is x86_64, 'arm64' is aarch64, 'hv' is hvm ...). A KVM host also runs
 * 'qemu' guests (libvirt reports both domain types); a QEMU (TCG) host only 'qemu'.
 * `img_hv_requested_version` (">= 6.0", "< 9", "== 8.2.1"; no operator means ==)
 * is compared with the host's hypervisorVersion; a host that reports none passes.
 */
import type { Filter, HostPredicate, HostState, RequestSpec } from '../types.ts';

const ARCH_ALIASES: Record<string, string> = {
  amd64: 'x86_64', x64: 'x86_64', x86_64: 'x86_64',
  i386: 'i686', i486: 'i686', i586: 'i686', x86: 'i686', ia32: 'i686', i686: 'i686',
  arm64: 'aarch64', aarch64: 'aarch64', armhf: 'armv7l', ppc64el: 'ppc64le', ppc: 'ppc', ppc64: 'ppc64', ppc64le: 'ppc64le',
};
const HV_ALIASES: Record<string, string> = { xapi: 'xen', 'hyper-v': 'hyperv' };
const VM_MODE_ALIASES: Record<string, string> = { hv: 'hvm', pv: 'xen', baremetal: 'hvm', hvm: 'hvm', xen: 'xen', exe: 'exe', uml: 'uml' };

export function canonicalArch(a: string): string {
  const l = a.toLowerCase();
  return ARCH_ALIASES[l] ?? l;
}
export function canonicalHvType(t: string): string {
  const l = t.toLowerCase();
  return HV_ALIASES[l] ?? l;
}
function canonicalVmMode(m: string): string {
  const l = m.toLowerCase();
  return VM_MODE_ALIASES[l] ?? l;
}

/** Nova's integer encoding: major * 1e6 + minor * 1e3 + micro. NaN when unparsable. */
export function versionNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  const p = v.trim().split('.');
  if (p.length === 0 || p.length > 3 || p.some((x) => !/^\d+$/.test(x))) return NaN;
  return Number(p[0]) * 1e6 + Number(p[1] ?? 0) * 1e3 + Number(p[2] ?? 0);
}

type VersionCheck = (hostVersion: number) => boolean;

function compileVersionRequirement(req: string): VersionCheck {
  const m = /^\s*(>=|<=|==|!=|=|>|<)?\s*([0-9.]+)\s*$/.exec(req);
  const want = m ? versionNumber(m[2]) : NaN;
  if (!m || Number.isNaN(want)) return () => false;
  switch (m[1]) {
    case '>=': return (v) => v >= want;
    case '<=': return (v) => v <= want;
    case '>': return (v) => v > want;
    case '<': return (v) => v < want;
    case '!=': return (v) => v !== want;
    default: return (v) => v === want;
  }
}

interface Wanted { arch?: string; hvType?: string; vmMode?: string; version?: VersionCheck; versionText?: string }

function wanted(props: Record<string, string>): Wanted | null {
  const arch = props.hw_architecture ?? props.architecture;
  const hv = props.img_hv_type ?? props.hypervisor_type;
  const mode = props.hw_vm_mode ?? props.vm_mode;
  const version = props.img_hv_requested_version;
  if (!arch && !hv && !mode && !version) return null;
  return {
    arch: arch ? canonicalArch(arch) : undefined,
    hvType: hv ? canonicalHvType(hv) : undefined,
    vmMode: mode ? canonicalVmMode(mode) : undefined,
    version: version ? compileVersionRequirement(version) : undefined,
    versionText: version,
  };
}

function hostRuns(host: HostState, hvType: string): boolean {
  const h = canonicalHvType(host.hypervisorType);
  return h === hvType || (h === 'kvm' && hvType === 'qemu');
}

/** The first unmet property's reason, or null when the host supports the image. */
function mismatch(host: HostState, w: Wanted): string | null {
  if (w.arch && canonicalArch(host.arch) !== w.arch) return `arch ${host.arch}`;
  if (w.hvType && !hostRuns(host, w.hvType)) return `hypervisor ${host.hypervisorType}`;
  if (w.vmMode && w.vmMode !== 'hvm') return 'only hvm guests';
  if (w.version && host.hypervisorVersion !== undefined) {
    const v = versionNumber(host.hypervisorVersion);
    if (Number.isNaN(v) || !w.version(v)) return `hypervisor version ${host.hypervisorVersion}`;
  }
  return null;
}

function compile(w: Wanted): HostPredicate {
  const { arch, hvType, vmMode, version } = w;
  if (vmMode && vmMode !== 'hvm') return () => false;
  return (host) => {
    if (arch !== undefined && host.arch !== arch && canonicalArch(host.arch) !== arch) return false;
    if (hvType !== undefined && !hostRuns(host, hvType)) return false;
    if (version !== undefined && host.hypervisorVersion !== undefined) {
      const v = typeof host.hypervisorVersion === 'number' ? host.hypervisorVersion : versionNumber(host.hypervisorVersion);
      if (Number.isNaN(v) || !version(v)) return false;
    }
    return true;
  };
}

export const imagePropertiesFilter: Filter = {
  name: 'image-properties',
  passes(host, spec) {
    const w = wanted(spec.imageProperties);
    return !w || mismatch(host, w) === null;
  },
  forRequest(spec: RequestSpec) {
    const w = wanted(spec.imageProperties);
    return w ? compile(w) : null;
  },
  need(spec) {
    const w = wanted(spec.imageProperties);
    if (!w) return '';
    const parts: string[] = [];
    if (w.arch) parts.push(`arch ${w.arch}`);
    if (w.hvType) parts.push(`hypervisor ${w.hvType}`);
    if (w.vmMode) parts.push(`vm mode ${w.vmMode}`);
    if (w.versionText) parts.push(`hypervisor version ${w.versionText}`);
    return `need ${parts.join(', ')}`;
  },
  explain(host, spec) {
    const w = wanted(spec.imageProperties);
    return (w && mismatch(host, w)) ?? 'supported';
  },
};
