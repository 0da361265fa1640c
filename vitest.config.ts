import { defineConfig } from 'vitest/config';

// Two projects: fast pure-logic tests, and tests against the real local stack
// (Temporal, Postgres, NATS, S3, registries, Varnish) that `stack up` started.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'stack',
          include: ['test/stack/**/*.test.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
          globalSetup: ['test/stack/global-setup.ts'],
        },
      },
    ],
  },
});
