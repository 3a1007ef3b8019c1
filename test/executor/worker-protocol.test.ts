/** The run message a worker gets: tasks in columns, each function's strings once, one buffer. */
import { describe, expect, test } from 'vitest'
import { packRun, unpackRun, type WireTask } from '../../src/executor/worker-protocol.ts'

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
