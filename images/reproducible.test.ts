import { describe, expect, it } from 'vitest';
import { withoutCheckoutPath } from './reproducible.ts';

describe('withoutCheckoutPath', () => {
  it('gives the same text for bundles built in two checkouts', () => {
    const bundle = (repo: string): string =>
      `var a=g(function(){var __dirname="${repo}/node_modules/pino/lib";});var r="${repo}";`;
    const a = withoutCheckoutPath(bundle('/work/a'), '/work/a', '/opt/trellis/lib');
    const b = withoutCheckoutPath(bundle('/home/u/src/trellis'), '/home/u/src/trellis/', '/opt/trellis/lib');
    expect(a).toBe(b);
    expect(a).toBe(
      'var a=g(function(){var __dirname="/opt/trellis/lib/node_modules/pino/lib";});var r="/opt/trellis/lib";',
    );
  });

  it('leaves a folder that only starts with the checkout name alone', () => {
    expect(withoutCheckoutPath('"/work/ab/x"', '/work/a', '/L')).toBe('"/work/ab/x"');
  });
});
