import type { Libp2p } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { RemoteProtocolError } from '../../../src/errors.ts'
import { RemoteRequestError } from '../../../src/protocol/errors.ts'
import { STEAL_PROTOCOL } from '../../../src/protocol/steal/codec.ts'
import {
  registerStealProtocol,
  type StealCallbacks,
  StealClient,
} from '../../../src/protocol/steal/handler.ts'
import type { ProtocolRegistrar } from '../../../src/protocol/stream.ts'
import type { Batch } from '../../../src/scheduler/types.ts'
import { FakeRegistrar, frame, until, whenClosed } from '../fakes.ts'
import { batch, PEER_A, PEER_B } from '../fixtures.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const FREE = { cpu: 4, gpu: 0, memoryMB: 8192 }

interface Victim {
  registrar: FakeRegistrar
  calls: Array<{ peer: string; max: number }>
  written: Array<{ peer: string; tasks: number; err?: Error }>
  errors: Array<{ peer: string; err: Error }>
}

async function victim(overrides: Partial<StealCallbacks> = {}): Promise<Victim> {
  const v: Victim = { registrar: new FakeRegistrar(), calls: [], written: [], errors: [] }
  await registerStealProtocol(
    v.registrar,
    {
      async onStealRequest(peer, req) {
        v.calls.push({ peer, max: req.max })
        return { batch: batch(req.max) }
      },
      onStealReplyWritten(peer, reply, err) {
        v.written.push({ peer, tasks: reply.batch.tasks.length, err })
      },
      async onPush(_peer, req) {
        return { accepted: req.batch.tasks.length }
      },
      ...overrides,
    },
    { timeoutMs: 1000, onError: (peer, err) => v.errors.push({ peer, err }) },
  )
  return v
}

describe('steal protocol', () => {
  it('takes a real libp2p node as its registrar (a compile-time check)', () => {
    const fits = (node: Libp2p): ProtocolRegistrar => node
    expect(fits).toBeTypeOf('function')
  })

  it('registers with bounded stream counts', async () => {
    const v = await victim()
    expect(v.registrar.handlers.get(STEAL_PROTOCOL)?.options).toEqual({
      maxInboundStreams: 8,
      maxOutboundStreams: 8,
    })
  })

  it('steals and pushes, pipelined on one stream, and reports grants as written', async () => {
    const v = await victim()
    const thief = new StealClient(v.registrar.opener(STEAL_PROTOCOL, PEER_B))
    const [a, b, p] = await Promise.all([
      thief.steal({ free: FREE, max: 2 }),
      thief.steal({ free: FREE, max: 3 }),
      thief.push({ batch: batch(4) }),
    ])
    expect(a).toEqual({ batch: batch(2) })
    expect(b.batch.tasks).toHaveLength(3)
    expect(p).toEqual({ accepted: 4 })
    expect(v.calls).toEqual([
      { peer: PEER_B, max: 2 },
      { peer: PEER_B, max: 3 },
    ])
    expect(v.written).toEqual([
      { peer: PEER_B, tasks: 2, err: undefined },
      { peer: PEER_B, tasks: 3, err: undefined },
    ])
    expect(v.registrar.opened).toBe(1)
    thief.close()
  })

  it('a peer sending garbage loses its stream; the victim keeps serving others', async () => {
    const v = await victim()
    const honest = new StealClient(v.registrar.opener(STEAL_PROTOCOL, PEER_B))
    const bad = await v.registrar.connect(STEAL_PROTOCOL, PEER_A)
    bad.outbound.send(frame(new TextEncoder().encode('{"t":"steal"}')))
    await bad.done
    await whenClosed(bad.outbound)
    expect(bad.outbound.status).toBe('reset')
    expect(v.errors).toHaveLength(1)
    expect(v.errors[0].peer).toBe(PEER_A)
    expect(v.errors[0].err).toBeInstanceOf(RemoteProtocolError)
    expect((await honest.steal({ free: FREE, max: 1 })).batch.tasks).toHaveLength(1)
    honest.close()
  })

  it('a failing victim answers with an error and the stream goes on', async () => {
    let fail = true
    const v = await victim({
      async onStealRequest() {
        if (fail) {
          fail = false
          throw new Error('queue locked')
        }
        return { batch: batch(1) }
      },
    })
    const thief = new StealClient(v.registrar.opener(STEAL_PROTOCOL, PEER_B))
    await expect(thief.steal({ free: FREE, max: 1 })).rejects.toBeInstanceOf(RemoteRequestError)
    expect((await thief.steal({ free: FREE, max: 1 })).batch.tasks).toHaveLength(1)
    expect(v.registrar.opened).toBe(1)
    thief.close()
  })

  it('a grant that cannot be written is reported, so the victim keeps the batch', async () => {
    let started = false
    const v = await victim({
      async onStealRequest(_peer, req) {
        started = true
        await sleep(50)
        return { batch: batch(req.max) }
      },
    })
    const thief = new StealClient(v.registrar.opener(STEAL_PROTOCOL, PEER_B))
    const pending = thief.steal({ free: FREE, max: 2 })
    await until(() => started)
    thief.close() // the thief's stream is reset while the victim is choosing
    await expect(pending).rejects.toThrow()
    await v.registrar.served[0].done
    expect(v.written).toHaveLength(1)
    expect(v.written[0].err).toBeInstanceOf(Error)
  })

  it('a steal granted after its caller gave up is handed over as a late batch', async () => {
    const late: Batch[] = []
    let started = false
    const v = await victim({
      async onStealRequest(_peer, req) {
        started = true
        await sleep(40)
        return { batch: batch(req.max) }
      },
    })
    const thief = new StealClient(v.registrar.opener(STEAL_PROTOCOL, PEER_B), {
      onLateBatch: (b) => late.push(b),
    })
    const ctl = new AbortController()
    const pending = thief.steal({ free: FREE, max: 2 }, { signal: ctl.signal })
    await until(() => started)
    ctl.abort(new Error('backed off'))
    await expect(pending).rejects.toThrow('backed off')
    await until(() => late.length > 0)
    expect(late).toEqual([batch(2)])
    thief.close()
  })
})
