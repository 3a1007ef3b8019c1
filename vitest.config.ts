import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // In CI, also a JSON report, from which .ci/run prints one plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', 'test/examples/**'],
        },
      },
      {
        // Each file starts several real daemons; one file at a time keeps them from starving each
        // other of this machine's two cores (timing-sensitive checks stay honest).
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/examples/**/*.test.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
})
