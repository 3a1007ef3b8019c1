import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real daemons; keep them from fighting over two cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
})
