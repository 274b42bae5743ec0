// Lint rules. The layering rule keeps src/ free of program code and keeps the programs
// (operator, agent, cni, lab) from importing each other: they share only through src/.
import tseslint from 'typescript-eslint';

const programs = ['operator', 'agent', 'cni', 'lab'];

function layerRule(self) {
  const others = programs.filter((p) => p !== self);
  return {
    files: [self === 'src' ? 'src/**/*.ts' : `${self}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: (self === 'src' ? programs : others).map((p) => ({
            // src/cni, src/operator... are shared libraries, not the programs of the same name:
            // from src/<area>/, `../cni/x` is src/cni; only a path climbing out of src/ is a program.
            group:
              self === 'src'
                ? [`../../${p}/*`, `../../../${p}/*`, `**/../../${p}/*`]
                : [`**/${p}/*`, `../${p}/*`, `../../${p}/*`, `!**/src/${p}/*`],
            message: `${self}/ must not import from ${p}/: share code through src/.`,
          })),
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'charts/**', 'dist/**', '.cache/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  layerRule('src'),
  ...programs.map(layerRule),
);
