// The long-lived `ip -batch` session that ADD's node-side work goes through
// (src/dataplane/ip-session.ts), against the real kernel in a namespace of its own: changes land
// in order, a failed line is named with the kernel's reason and does not stop later jobs, an
// argument `ip` rejects outright ends only that job, and a link re-created under the same name is
// found afresh. (veth pairs: this kernel has no dummy module.)
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '../../src/dataplane/exec.ts';
import { IpBatchSession } from '../../src/dataplane/ip-session.ts';

const NS = `tis-${process.pid}`;
const PATH = `/run/netns/${NS}`;
let session: IpBatchSession;

function inNs(...args: string[]): string {
  return execFileSync('ip', ['-n', NS, ...args], { encoding: 'utf8' });
}

beforeAll(() => {
  execFileSync('ip', ['netns', 'add', NS]);
  session = new IpBatchSession({ netns: PATH });
});

afterAll(() => {
  session.close();
  execFileSync('ip', ['netns', 'del', NS]);
});

describe('ip batch session', () => {
  it('applies jobs in order, each resolving once its lines are in the kernel', async () => {
    await session.run(['link add name d0 type veth peer name p0', 'link set dev d0 up']);
    await session.run(['route replace 10.9.0.1/32 dev d0 scope link proto 222']);
    expect(inNs('route', 'show', 'dev', 'd0')).toContain('10.9.0.1 proto 222 scope link');
  });

  it('names the failed line and the kernel reason; the rest of the job and later jobs still run', async () => {
    const err = await session
      .run(['link add name d0 type veth peer name p0', 'link add name d1 type veth peer name p1'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).stderr).toMatch(
      /File exists \(at "link add name d0 type veth peer name p0"\)/,
    );
    expect((err as CommandError).message).toContain('ip -batch -');
    expect(inNs('link', 'show', 'dev', 'd1')).toContain('d1');
    await session.run(['link del dev d1']);
  });

  it('an unknown device is reported as such (DEL and rollback rely on the words)', async () => {
    const err = await session.run(['link set dev nosuch0 up']).catch((e: unknown) => e);
    expect((err as CommandError).stderr).toMatch(/Cannot find device "nosuch0"/);
  });

  it('an argument ip refuses outright fails that job only; the next job gets a new process', async () => {
    const err = await session
      .run(['link add name v0 type veth peer name v1 netns /nonexistent/ns'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).stderr).toMatch(/Invalid "netns" value/);
    await session.run(['link add name d2 type veth peer name p2']);
    expect(inNs('link', 'show', 'dev', 'd2')).toContain('d2');
  });

  it('finds a link re-created under the same name (no stale name memory)', async () => {
    await session.run(['link del dev d0', 'link add name d0 type veth peer name p0', 'link set dev d0 up']);
    await session.run(['route replace 10.9.0.2/32 dev d0 scope link']);
    const index = JSON.parse(inNs('-j', 'link', 'show', 'dev', 'd0')) as { ifindex: number }[];
    const routes = JSON.parse(inNs('-j', 'route', 'show', '10.9.0.2/32')) as { dev: string }[];
    expect(routes).toEqual([expect.objectContaining({ dev: 'd0' })]);
    expect(index[0]!.ifindex).toBeGreaterThan(0);
  });

  it('lets go of a namespace it opened for `netns PATH` once idle (ip itself never closes it)', async () => {
    const other = `${NS}-b`;
    execFileSync('ip', ['netns', 'add', other]);
    try {
      await session.run([`link add name h0 type veth peer name h1 netns /run/netns/${other}`], {
        holdsNamespace: true,
      });
      expect(execFileSync('ip', ['-n', other, 'link', 'show', 'h1'], { encoding: 'utf8' })).toContain('h1');
      // a plain (not lazy) unmount fails while any process holds the namespace open
      let unmounted = false;
      for (let i = 0; i < 40 && !unmounted; i++) {
        try {
          execFileSync('umount', [`/run/netns/${other}`], { stdio: 'ignore' });
          unmounted = true;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(unmounted).toBe(true);
      // the pair went with the freed namespace; the next job runs in a new process
      await session.run(['link add name h0 type veth peer name h1', 'link del dev h0']);
    } finally {
      execFileSync('ip', ['netns', 'del', other], { stdio: 'ignore' });
    }
  });

  it('runs many jobs given at once, each answered on its own', async () => {
    const jobs = Array.from({ length: 40 }, (_, i) =>
      session.run([`addr add 10.9.1.${i}/32 dev d0`]).then(
        () => 'ok',
        (e: unknown) => String(e),
      ),
    );
    // one of them collides with an address given twice
    jobs.push(
      session.run(['addr add 10.9.1.3/32 dev d0']).then(
        () => 'ok',
        () => 'failed',
      ),
    );
    const results = await Promise.all(jobs);
    expect(results.slice(0, 40)).toEqual(Array(40).fill('ok'));
    expect(results[40]).toBe('failed');
    expect(inNs('addr', 'show', 'dev', 'd0').match(/inet 10\.9\.1\./g)).toHaveLength(40);
  });
});
