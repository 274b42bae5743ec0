import { describe, expect, it } from 'vitest';
import { parseLdd } from './rootfs.ts';

describe('ldd output', () => {
  it('lists every library path once, the loader included, and nothing for the vDSO', () => {
    const out = `	linux-vdso.so.1 (0x00007ffd)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f1)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)
	/lib64/ld-linux-x86-64.so.2 (0x00007f3)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)
`;
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });
});
