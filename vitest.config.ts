// Three tiers: colocated unit tests, integration tests against a real kube-apiserver + etcd,
// and end-to-end tests with real network namespaces. Integration and e2e tests share one control
// plane per worker file through test/support, and run one file at a time (2-core machines).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'src/**/*.test.ts',
            'operator/**/*.test.ts',
            'agent/**/*.test.ts',
            'cni/**/*.test.ts',
            'lab/**/*.test.ts',
            'images/**/*.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          globalSetup: ['test/support/global-setup.ts'],
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'e2e',
          globalSetup: ['test/support/global-setup.ts'],
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
