/**
 * `/gridnode/member/1.0.0`: how two nodes of a private mesh prove membership
 * to each other before any other gridnode protocol, DHT or gossip stream is
 * allowed between them, and how a new node redeems an invitation or a member
 * renews its certificate. Certificates and revocations travel as the signed
 * bytes the mesh key produced; their meaning is checked by src/node/membership.
 *
 *   hello  {cert}          → hello-ok  {cert, revocations}   (both sides now know the other)
 *   redeem {secret}        → redeemed  {cert}                (a joining node, no certificate yet)
 *   renew  {}              → renewed   {cert}                (a member whose certificate nears its end)
 */
import { type ErrorReply, errorReplyFields, fields, messageCodec } from '../message.ts'
import { arr, bytes } from '../validate.ts'

export const MEMBER_PROTOCOL = '/gridnode/member/1.0.0'
export const MAX_CERT_BYTES = 2048
/** Revocations sent in one hello answer; a mesh that revoked more keeps only the newest. */
export const MAX_HELLO_REVOCATIONS = 2048
export const MEMBER_MAX_MESSAGE_BYTES = MAX_HELLO_REVOCATIONS * MAX_CERT_BYTES + 64 * 1024

export type MemberRequest =
  | { t: 'hello'; cert: Uint8Array }
  | { t: 'redeem'; secret: Uint8Array }
  | { t: 'renew' }

export type MemberReply =
  | { t: 'hello-ok'; cert: Uint8Array; revocations: Uint8Array[] }
  | { t: 'redeemed'; cert: Uint8Array }
  | { t: 'renewed'; cert: Uint8Array }

const cert = bytes(MAX_CERT_BYTES)

export const memberRequestCodec = messageCodec<MemberRequest>('member', MEMBER_MAX_MESSAGE_BYTES, {
  hello: fields({ cert }),
  redeem: fields({ secret: bytes(32) }),
  renew: fields({}),
})

export const memberReplyCodec = messageCodec<MemberReply | ErrorReply>('member', MEMBER_MAX_MESSAGE_BYTES, {
  'hello-ok': fields({ cert, revocations: arr(cert, MAX_HELLO_REVOCATIONS) }),
  redeemed: fields({ cert }),
  renewed: fields({ cert }),
  error: errorReplyFields,
})

export function memberReplyMatches(req: MemberRequest, rep: MemberReply): boolean {
  return (
    (req.t === 'hello' && rep.t === 'hello-ok') ||
    (req.t === 'redeem' && rep.t === 'redeemed') ||
    (req.t === 'renew' && rep.t === 'renewed')
  )
}
