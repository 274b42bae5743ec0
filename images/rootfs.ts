// A staged image root: files copied from this machine's Debian packages and the pinned Node,
// with every shared library they load (ldd), under a merged /usr (bin, sbin, lib, lib64 are
// links into /usr as on Debian 12). Modes are set explicitly, never taken from the umask, so
// the layer tar depends only on what was added.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';

const MERGED = ['bin', 'sbin', 'lib', 'lib64'];

export class RootFs {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    for (const d of MERGED) {
      this.mkdir(`/usr/${d}`);
      symlinkSync(`usr/${d}`, join(dir, d));
    }
  }

  private mkdir(imagePath: string, mode = 0o755): void {
    const parts = imagePath.split('/').filter(Boolean);
    let cur = this.dir;
    for (const p of parts) {
      cur = join(cur, p);
      if (!existsSync(cur)) {
        mkdirSync(cur);
        chmodSync(cur, mode);
      }
    }
  }

  directory(imagePath: string, mode = 0o755): this {
    this.mkdir(imagePath);
    chmodSync(join(this.dir, imagePath), mode);
    return this;
  }

  /** Writes a file with the given content and mode. */
  write(imagePath: string, content: string | Buffer, mode = 0o644): this {
    this.mkdir(posix.dirname(imagePath));
    const dest = join(this.dir, imagePath);
    writeFileSync(dest, content);
    chmodSync(dest, mode);
    return this;
  }

  /** Copies a file's content (following links) to imagePath; executables get 0755, the rest 0644. */
  copy(hostPath: string, imagePath: string, mode?: number): this {
    this.mkdir(posix.dirname(imagePath));
    const dest = join(this.dir, imagePath);
    rmSync(dest, { force: true });
    copyFileSync(hostPath, dest);
    chmodSync(dest, mode ?? (statSync(hostPath).mode & 0o111 ? 0o755 : 0o644));
    return this;
  }

  link(imagePath: string, target: string): this {
    this.mkdir(posix.dirname(imagePath));
    const dest = join(this.dir, imagePath);
    rmSync(dest, { force: true });
    symlinkSync(target, dest);
    return this;
  }

  /**
   * Adds a host file at the same path (its folder resolved through the merged /usr), keeping a
   * symlink as a symlink and adding what it points to, so /lib64/ld-linux-x86-64.so.2 works.
   */
  host(hostPath: string): this {
    const canonical = join(realpathSync(dirname(hostPath)), basename(hostPath));
    if (existsSync(join(this.dir, canonical)) || isLink(join(this.dir, canonical))) return this;
    if (lstatSync(canonical).isSymbolicLink()) {
      const target = readlinkSync(canonical);
      this.link(canonical, target);
      return this.host(posix.resolve(dirname(canonical), target));
    }
    return this.copy(canonical, canonical);
  }

  /** A host executable with its shared libraries (and their links). */
  binary(hostPath: string, imagePath?: string): this {
    if (imagePath) this.copy(hostPath, imagePath, 0o755);
    else this.host(hostPath);
    for (const lib of sharedLibraries(hostPath)) this.host(lib);
    return this;
  }

  /** Files of an installed Debian package (`dpkg -L`) that `keep` selects, binaries with their libraries. */
  fromPackage(pkg: string, keep: (path: string) => boolean): this {
    const files = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && keep(f) && existsSync(f) && !statSync(f).isDirectory());
    if (files.length === 0)
      throw new Error(`package ${pkg} has no file selected for the image; is it installed?`);
    for (const f of files) {
      if (statSync(f).mode & 0o111) this.binary(f);
      else this.host(f);
    }
    return this;
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Absolute paths of the shared libraries a binary loads; none for a static binary. */
export function sharedLibraries(binary: string): string[] {
  const res = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (res.status !== 0) return []; // "not a dynamic executable"
  return parseLdd(res.stdout);
}

export function parseLdd(out: string): string[] {
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [...libs].sort();
}
