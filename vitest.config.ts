import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
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
