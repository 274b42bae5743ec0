import { describe, expect, it } from 'vitest';
import { SelectorError, compileSelector, matchesSelector, parseSelector } from './index.ts';

const web = { app: 'web', tier: 'front', 'example.com/zone': 'a' };

describe('compileSelector (object form, Kubernetes semantics)', () => {
  it('matchLabels needs every pair to be equal', () => {
    expect(matchesSelector({ matchLabels: { app: 'web', tier: 'front' } }, web, 'nothing')).toBe(true);
    expect(matchesSelector({ matchLabels: { app: 'web', tier: 'back' } }, web, 'nothing')).toBe(false);
    expect(matchesSelector({ matchLabels: { missing: '' } }, web, 'nothing')).toBe(false);
    expect(matchesSelector({ matchLabels: { missing: '' } }, { missing: '' }, 'nothing')).toBe(true);
  });

  it('In needs the label present with a listed value', () => {
    const s = compileSelector(
      { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'x'] }] },
      { absent: 'nothing' },
    );
    expect(s.matches(web)).toBe(true);
    expect(s.matches({ tier: 'back' })).toBe(false);
    expect(s.matches({})).toBe(false);
  });

  it('NotIn matches an absent label and any unlisted value', () => {
    const s = compileSelector(
      { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['back'] }] },
      { absent: 'nothing' },
    );
    expect(s.matches(web)).toBe(true);
    expect(s.matches({})).toBe(true);
    expect(s.matches({ tier: 'back' })).toBe(false);
  });

  it('Exists and DoesNotExist test presence only (an empty value is present)', () => {
    const exists = compileSelector(
      { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] },
      { absent: 'nothing' },
    );
    const absent = compileSelector(
      { matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] },
      { absent: 'nothing' },
    );
    expect(exists.matches({ gpu: '' })).toBe(true);
    expect(exists.matches(web)).toBe(false);
    expect(absent.matches({ gpu: '' })).toBe(false);
    expect(absent.matches(web)).toBe(true);
  });

  it('ANDs matchLabels with every expression', () => {
    const s = compileSelector(
      {
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'example.com/zone', operator: 'In', values: ['a', 'b'] },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      },
      { absent: 'nothing' },
    );
    expect(s.matches(web)).toBe(true);
    expect(s.matches({ ...web, legacy: 'yes' })).toBe(false);
    expect(s.matches({ ...web, app: 'db' })).toBe(false);
  });

  it('the empty selector matches everything, including unlabelled objects', () => {
    const s = compileSelector({}, { absent: 'nothing' });
    expect(s.everything).toBe(true);
    expect(s.matches(undefined)).toBe(true);
    expect(s.matches(web)).toBe(true);
    expect(
      compileSelector({ matchLabels: {}, matchExpressions: [] }, { absent: 'nothing' }).matches({}),
    ).toBe(true);
  });

  it('an absent selector means what the caller says the field means', () => {
    expect(compileSelector(undefined, { absent: 'everything' }).matches(web)).toBe(true);
    expect(compileSelector(null, { absent: 'nothing' }).matches(web)).toBe(false);
    expect(compileSelector(null, { absent: 'nothing' }).nothing).toBe(true);
  });

  it('rejects an unknown operator with the field to fix', () => {
    const bad = { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] };
    expect(() => compileSelector(bad, { absent: 'nothing', field: 'spec.pools[0].nodeSelector' })).toThrow(
      'spec.pools[0].nodeSelector.matchExpressions[0].operator: unknown operator "Gt": use one of In, NotIn, Exists, DoesNotExist',
    );
    expect(() => matchesSelector(bad, web, 'everything')).toThrow(SelectorError);
  });

  it('rejects In/NotIn without values, Exists with values, and invalid keys or values', () => {
    const f = { absent: 'nothing' } as const;
    expect(() =>
      compileSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, f),
    ).toThrow('selector.matchExpressions[0].values: operator In needs at least one value');
    expect(() =>
      compileSelector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, f),
    ).toThrow('operator Exists takes no values');
    expect(() => compileSelector({ matchLabels: { 'bad key': 'x' } }, f)).toThrow(
      'label key "bad key" is invalid',
    );
    expect(() => compileSelector({ matchLabels: { a: 'no spaces' } }, f)).toThrow(
      'label value "no spaces" is invalid',
    );
    expect(() => compileSelector({ matchLabels: { 'Bad_Prefix/a': 'x' } }, f)).toThrow('invalid prefix');
  });

  it('prints the query form, sorted by key, whatever order the user wrote', () => {
    const a = compileSelector(
      {
        matchLabels: { tier: 'front' },
        matchExpressions: [
          { key: 'zone', operator: 'NotIn', values: ['c', 'b'] },
          { key: 'app', operator: 'Exists' },
          { key: 'old', operator: 'DoesNotExist' },
        ],
      },
      { absent: 'nothing' },
    );
    expect(a.toString()).toBe('app,!old,tier=front,zone notin (b,c)');
    expect(() => compileSelector(null, { absent: 'nothing' }).toString()).toThrow('selects nothing');
  });
});

describe('parseSelector (query-string form)', () => {
  it('parses equality, set and existence terms', () => {
    const s = parseSelector(
      'app=web, tier==front,zone!=b,example.com/zone in (a, c),legacy notin (x),app,!gpu',
    );
    expect(s.matches(web)).toBe(true);
    expect(s.matches({ ...web, gpu: '1' })).toBe(false);
    expect(s.matches({ ...web, 'example.com/zone': 'b' })).toBe(false);
    expect(parseSelector('zone!=b').matches({})).toBe(true);
  });

  it('round-trips through the printed form', () => {
    const text = 'a in (x,y),b notin (y,z),c,!d,e=f';
    expect(parseSelector(text).toString()).toBe(text);
  });

  it('treats the empty string as everything and rejects what it cannot parse', () => {
    expect(parseSelector('').everything).toBe(true);
    expect(parseSelector('  ').matches({})).toBe(true);
    expect(() => parseSelector('a in ()', '--selector')).toThrow(
      '--selector: "a in ()": "in" needs at least one value',
    );
    expect(() => parseSelector('a,,b')).toThrow('empty term');
    expect(() => parseSelector('a in (x')).toThrow('unbalanced parentheses');
    expect(() => parseSelector('a > 3')).toThrow('cannot parse "a > 3"');
  });
});
