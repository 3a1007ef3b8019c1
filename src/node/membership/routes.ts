/** The control API's membership routes: invitations, the member list, revocations. */
import type { ApiServer } from '../api.ts'
import { MembershipError } from './certs.ts'
import type { Membership } from './membership.ts'

const MAX_INVITE_MS = 365 * 24 * 3600_000

export function registerMembershipRoutes(api: ApiServer, membership: Membership): void {
  api.route('GET', '/v1/members', () => membership.list())
  api.route('POST', '/v1/invites', ({ body }) => {
    const b = (body ?? {}) as { expiresMs?: unknown; uses?: unknown }
    const expiresMs = b.expiresMs ?? 24 * 3600_000
    const uses = b.uses ?? 1
    if (typeof expiresMs !== 'number' || !(expiresMs >= 1000 && expiresMs <= MAX_INVITE_MS)) {
      throw new MembershipError('GN_BAD_FLAG', '--expires: expected a duration from 1s to 365 days')
    }
    if (typeof uses !== 'number' || !Number.isInteger(uses) || uses < 1 || uses > 10_000) {
      throw new MembershipError('GN_BAD_FLAG', '--uses: expected a whole number from 1 to 10000')
    }
    return membership.invite({ expiresMs, uses })
  })
  api.route('POST', '/v1/members/revoke', async ({ body }) => {
    const peer = (body as { peer?: unknown } | undefined)?.peer
    if (typeof peer !== 'string') throw new MembershipError('GN_BAD_FLAG', 'revoke: expected a peer ID')
    return membership.revoke(peer)
  })
}
