/**
 * "Who steals from whom right now" across the mesh: a node's own flows
 * (Activity, from scheduler steps) go into its advert, and the hub merges
 * every member's advertised view into one edge per direction.
 */
import { describe, expect, it } from 'vitest'
import { Adverts } from '../../../src/node/adverts.ts'
import { Activity, FLOW_WINDOW_MS } from '../../../src/node/dashboard/activity.ts'
import { MESH_FLOWS_MAX, meshFlows } from '../../../src/node/dashboard/hub.ts'
import type { AdvertFlow } from '../../../src/protocol/advert/codec.ts'
import type { Command, SchedulerEvent } from '../../../src/scheduler/types.ts'
import { advertsOptions } from '../adverts-options.ts'

const A = 'peer-A'
const B = 'peer-B'
const C = 'peer-C'
const D = 'peer-D'
const NOW = 1_000_000

function tasks(n: number) {
  return { tasks: Array.from({ length: n }, () => ({})) }
}

describe("a node's flows for its advert", () => {
  it('names the other end and the direction, busiest first, at most 16', () => {
    const act = new Activity(A)
    // B stole 5 from A (A replied), A stole 3 from C (C granted), A pushed 2 to D.
    act.step({ type: 'steal-requested', at: NOW } as unknown as SchedulerEvent, [
      { type: 'reply-steal', to: B, batch: tasks(5) } as unknown as Command,
    ])
    act.step(
      { type: 'steal-granted', from: C, batch: tasks(3), at: NOW + 100 } as unknown as SchedulerEvent,
      [],
    )
    act.step({ type: 'x', at: NOW + 200 } as unknown as SchedulerEvent, [
      { type: 'push-batch', to: D, batch: tasks(2) } as unknown as Command,
    ])
    // An empty reply is no flow.
    act.step({ type: 'x', at: NOW } as unknown as SchedulerEvent, [
      { type: 'reply-steal', to: C, batch: tasks(0) } as unknown as Command,
    ])
    expect(act.advertFlows(NOW + 1000)).toEqual([
      { peer: B, kind: 'steal', out: true, tasks: 5, agoMs: 1000 },
      { peer: C, kind: 'steal', out: false, tasks: 3, agoMs: 900 },
      { peer: D, kind: 'push', out: true, tasks: 2, agoMs: 800 },
    ])
    for (let i = 0; i < 40; i++)
      act.step({ type: 'x', at: NOW } as unknown as SchedulerEvent, [
        { type: 'reply-steal', to: `thief-${i}`, batch: tasks(1 + i) } as unknown as Command,
      ])
    const many = act.advertFlows(NOW + 1000)
    expect(many).toHaveLength(16)
    expect(many[0]).toMatchObject({ peer: 'thief-39', tasks: 40 })
    // Past the window, nothing.
    expect(act.advertFlows(NOW + FLOW_WINDOW_MS + 1000)).toEqual([])
  })
})

describe('the mesh-wide flows on the page', () => {
  const f = (peer: string, o: Partial<AdvertFlow> = {}): AdvertFlow => ({
    peer,
    kind: 'steal',
    out: true,
    tasks: 1,
    agoMs: 0,
    ...o,
  })

  it('merges both ends of a steal into one edge and keeps edges this node took no part in', () => {
    const rows = meshFlows(
      A,
      // This node saw B steal 7 from it, 2 s ago.
      [{ from: A, to: B, kind: 'steal', tasks: 7, lastAt: NOW - 2000 }],
      [
        // B says it stole 8 from A (one more since its count), 1 s before its advert, which arrived 500 ms ago.
        { peer: B, ageMs: 500, flows: [f(A, { out: false, tasks: 8, agoMs: 1000 })] },
        // C and D, far from this node: C stole 4 from D (both say so), D pushed 9 to B.
        { peer: C, ageMs: 100, flows: [f(D, { out: false, tasks: 4, agoMs: 50 })] },
        {
          peer: D,
          ageMs: 0,
          flows: [f(C, { tasks: 4, agoMs: 300 }), f(B, { kind: 'push', tasks: 9, agoMs: 10 })],
        },
      ],
      NOW,
    )
    expect(rows).toEqual([
      { from: D, to: B, kind: 'push', tasks: 9, agoMs: 10, seenBy: [D] },
      { from: A, to: B, kind: 'steal', tasks: 8, agoMs: 1500, seenBy: [A, B] },
      { from: D, to: C, kind: 'steal', tasks: 4, agoMs: 150, seenBy: [C, D] },
    ])
  })

  it('leaves out stale views and self-loops, and keeps the busiest edges only', () => {
    const stale = meshFlows(
      A,
      [],
      [
        { peer: B, ageMs: 30_000, flows: [f(C)] },
        { peer: C, ageMs: 0, flows: [f(C)] },
      ],
      NOW,
    )
    expect(stale).toEqual([])
    // 100 members that each name 16 partners.
    const members = Array.from({ length: 100 }, (_, i) => `m${i}`)
    const remote = members.map((peer, i) => ({
      peer,
      ageMs: 0,
      flows: Array.from({ length: 16 }, (_, k) => f(members[(i + k + 1) % 100], { tasks: i * 16 + k })),
    }))
    const rows = meshFlows(A, [], remote, NOW)
    expect(rows).toHaveLength(MESH_FLOWS_MAX)
    expect(rows[0]).toMatchObject({ from: 'm99', tasks: 99 * 16 + 15 })
    expect(rows.every((r, i) => i === 0 || rows[i - 1].tasks >= r.tasks)).toBe(true)
  })
})

describe("the advert's flows field", () => {
  it('is sent only while there are flows, at most 16', () => {
    const node = { peerId: { toString: () => A } } as never
    let flows: AdvertFlow[] = []
    const adverts = new Adverts(node, advertsOptions())
    expect('flows' in adverts.build()).toBe(false)
    adverts.setFlows(() => flows)
    expect('flows' in adverts.build()).toBe(false)
    flows = Array.from({ length: 20 }, (_, i) => ({
      peer: `p${i}`,
      kind: 'steal',
      out: true,
      tasks: 1,
      agoMs: 0,
    }))
    expect(adverts.build().flows).toHaveLength(16)
  })
})
