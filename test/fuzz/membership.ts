/**
 * The member protocol's server (src/node/membership) under the same stream
 * fuzz as the others: a real Membership of a fresh private mesh (the issuer),
 * its `serve` registered as `attach` registers it, without a libp2p node.
 * Valid hellos carry real certificates (for members, for another mesh,
 * expired), so they reach the signature and expiry checks.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { pino } from 'pino'
import { issueCertificate, MembershipError } from '../../src/node/membership/certs.ts'
import { Membership, memberSpec } from '../../src/node/membership/membership.ts'
import { createMesh } from '../../src/node/membership/setup.ts'
import {
  MEMBER_PROTOCOL,
  type MemberReply,
  type MemberRequest,
  memberReplyCodec,
  memberRequestCodec,
} from '../../src/protocol/membership/codec.ts'
import type { MessageCodec } from '../../src/protocol/message.ts'
import { registerRpc } from '../../src/protocol/rpc.ts'
import { CODECS } from './codecs.ts'
import { PEERS, smallBytes, validWire, type Wire } from './gen.ts'
import { fuzzRpcServer, type RpcFuzzOptions, type ServerTally } from './servers.ts'

interface Serving {
  serve(peer: string, req: MemberRequest): Promise<MemberReply>
  loadOwnCertificate(): Promise<void>
  self: string
}

/** Runs the stream fuzz against a real Membership; cleans up its data dir. */
export async function fuzzMembershipServer(opts: RpcFuzzOptions): Promise<ServerTally> {
  const dir = mkdtempSync(join(tmpdir(), 'gridnode-fuzz-member-'))
  const identity = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(99))
  const creds = await createMesh(dir, 'fuzz', identity)
  const m = await Membership.open({ dataDir: dir, creds, log: pino({ level: 'silent' }) })
  const inside = m as unknown as Serving
  inside.self = peerIdFromPrivateKey(identity).toString()
  // As attach() does: the issuer signs its own certificate (hellos are answered with it).
  await inside.loadOwnCertificate()
  const key = creds.meshPrivateKey!
  const now = Date.now()
  const certs = await Promise.all([
    ...PEERS.map((peer) =>
      issueCertificate(key, { mesh: 'fuzz', peer, issued: now, expires: now + 3_600_000 }),
    ),
    issueCertificate(key, { mesh: 'other', peer: PEERS[1], issued: now, expires: now + 3_600_000 }),
    issueCertificate(key, { mesh: 'fuzz', peer: PEERS[2], issued: now - 10, expires: now - 5 }),
  ])
  const valid = fc.oneof(
    validWire.member,
    fc.constantFrom(...certs.map((c) => c.bytes)).map((cert): Wire => ({ v: 1, t: 'hello', cert })),
    smallBytes(32).map((secret): Wire => ({ v: 1, t: 'redeem', secret })),
  )
  try {
    return await fuzzRpcServer(
      {
        name: 'member',
        protocol: MEMBER_PROTOCOL,
        codec: { ...CODECS.member, valid },
        replies: memberReplyCodec,
        answers: { hello: 'hello-ok', redeem: 'redeemed', renew: 'renewed' },
        register: (registrar, seen, options) =>
          registerRpc(
            registrar,
            memberSpec,
            {
              handle: (peer, req) => {
                seen(peer, req.t, req)
                return inside.serve(peer, req)
              },
            },
            options,
          ),
        // Refusals of the membership layer itself (bad certificate, unknown invitation): error replies.
        expectedErrors: (err) => err instanceof MembershipError,
      },
      { ...opts, requestCodec: memberRequestCodec as unknown as MessageCodec<{ t: string }> },
    )
  } finally {
    m.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
