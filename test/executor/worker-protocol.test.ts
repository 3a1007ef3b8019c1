/** The run message a worker gets: tasks in columns, each function's strings once, one buffer. */

import { MessageChannel } from 'node:worker_threads'
import { describe, expect, test } from 'vitest'
import {
  packResults,
  packRun,
  type ResultsMessage,
  unpackResults,
  unpackRun,
  type WireResult,
  type WireTask,
} from '../../src/executor/worker-protocol.ts'

const bytes = (...b: number[]) => Uint8Array.from(b)

function task(id: number, over: Partial<WireTask> = {}): WireTask {
  return {
    id,
    bundle: 'b'.repeat(64),
    url: 'file:///blobs/bb.mjs',
    exportName: 'f',
    apply: false,
    input: bytes(id, id + 1),
    deps: [],
    ...over,
  }
}

describe('run messages', () => {
  test('tasks come back as sent: functions, inputs, dependency values, GPUs, working directories', () => {
    // An input that is a view into a bigger buffer travels as just its bytes.
    const big = new Uint8Array(100).fill(7)
    const tasks = [
      task(1),
      task(2, { exportName: 'g', apply: true, deps: [bytes(9), bytes(), bytes(8, 8)] }),
      task(3, { input: new Uint8Array(0), gpus: '0,1' }),
      task(4, { input: big.subarray(10, 13), cwd: '/work/t4' }),
      task(5, { url: 'file:///blobs/cc.mjs', bundle: 'c'.repeat(64), deps: [bytes(1, 2, 3)], gpus: '2' }),
      task(6),
    ]
    const transfer: ArrayBuffer[] = []
    const msg = packRun(tasks, transfer)
    expect(msg.fns).toHaveLength(3) // f, g (apply), f of another bundle
    expect(transfer).toEqual([msg.bytes.buffer])
    expect(msg.bytes.byteLength).toBe(2 + 2 + 0 + 3 + 2 + 2 + 1 + 0 + 2 + 3)
    const back = unpackRun(structuredClone(msg))
    expect(back.map((t) => ({ ...t, input: [...t.input], deps: t.deps.map((d) => [...d]) }))).toEqual(
      tasks.map((t) => ({ ...t, input: [...t.input], deps: t.deps.map((d) => [...d]) })),
    )
  })

  test('an empty batch and a batch of one', () => {
    expect(unpackRun(packRun([]))).toEqual([])
    const [one] = unpackRun(packRun([task(9, { deps: [bytes(5)] })]))
    expect([one.id, [...one.input], one.deps.map((d) => [...d])]).toEqual([9, [9, 10], [[5]]])
  })
})

describe('results messages', () => {
  test('results come back as sent: values (empty, absent, big and transferred), errors, stacks, times', async () => {
    const big = new Uint8Array(10_000).fill(3)
    const results: WireResult[] = [
      { id: 1, status: 'ok', value: bytes(1, 2), ms: 0.5 },
      { id: 2, status: 'ok', value: new Uint8Array(0), ms: 1 },
      { id: 3, status: 'ok', ms: 2 },
      { id: 4, status: 'threw', error: 'boom', stack: 'at x', ms: 3 },
      { id: 5, status: 'ok', value: big, ms: 4 },
      { id: 6, status: 'rejected', error: 'no export', ms: 0 },
      { id: 7, status: 'ok', value: bytes(9), ms: 5 },
    ]
    const expected = results.map((r) => ({ ...r, value: r.value && [...r.value] }))
    const transfer: ArrayBuffer[] = []
    const msg = packResults(results, transfer)
    expect(transfer).toContain(big.buffer)
    expect(msg.bytes.byteLength).toBe(3)
    const { port1, port2 } = new MessageChannel()
    const got = await new Promise<ResultsMessage>((resolve) => {
      port2.once('message', resolve)
      port1.postMessage(msg, transfer)
    })
    port1.close()
    const back = unpackResults(got)!
    expect(back.map((r) => ({ ...r, value: r.value && [...r.value] }))).toEqual(expected)
  })

  test('a message that packResults did not make is refused, not half read', () => {
    const good = packResults([{ id: 1, status: 'ok', value: bytes(1), ms: 1 }], [])
    expect(unpackResults(good)).toHaveLength(1)
    const bad: unknown[] = [
      { type: 'results', results: [] },
      { ...good, ids: [1] },
      { ...good, status: Uint8Array.of(7) },
      { ...good, ends: Uint32Array.of(99) },
      { ...good, ms: new Float64Array(2) },
      { ...good, big: [{ at: 5, value: bytes(1) }] },
      { ...good, errors: [{ at: 3, error: 'x' }] },
      { ...good, errors: null },
      // Positions that are not indexes of a result, and times that would poison the pool's costs.
      { ...good, errors: [{ at: 'length', error: 'x' }] },
      { ...good, errors: [{ at: '__proto__', error: 'polluted' }] },
      { ...good, big: [{ at: 0.5, value: bytes(1) }] },
      { ...good, big: [null] },
      { ...good, ms: Float64Array.of(Number.NaN) },
      { ...good, ms: Float64Array.of(-1) },
    ]
    for (const m of bad) expect(unpackResults(m as ResultsMessage)).toBeUndefined()
    expect(([] as unknown as { error?: string }).error).toBeUndefined()
  })
})
