/**
 * Membership of a private mesh, checked on every connection.
 *
 * Outer layer: the swarm key (libp2p private networks, see create-node.ts):
 * without it no connection forms. Inner layer, here: before any gridnode
 * protocol, DHT or gossip stream is served or opened with a peer, the two
 * exchange membership certificates over /gridnode/member/1.0.0 and check
 * them against the mesh key (a stream middleware on every gated protocol
 * waits for that). A peer that holds the swarm key but no valid certificate
 * is hung up on; a revoked peer is refused at the connection gater.
 *
 * The node holding the mesh signing key (the issuer) also redeems
 * invitations, renews certificates and signs revocations, which reach every
 * member by gossip and in every hello answer.
 */
import { randomBytes } from 'node:crypto'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Connection, ConnectionGater, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  MAX_HELLO_REVOCATIONS,
  MEMBER_MAX_MESSAGE_BYTES,
  MEMBER_PROTOCOL,
  type MemberReply,
  type MemberRequest,
  memberReplyCodec,
  memberReplyMatches,
  memberRequestCodec,
} from '../../protocol/membership/codec.ts'
import { isValidPeerId } from '../../protocol/peer-id.ts'
import { type RpcSpec, registerRpc, rpcClient } from '../../protocol/rpc.ts'
import type { GridLibp2p } from '../create-node.ts'
import type { Logger } from '../logger.ts'
import {
  type Certificate,
  encodeToken,
  issueCertificate,
  issueRevocation,
  MembershipError,
  openCertificate,
  openRevocation,
  type Revocation,
  type Signed,
} from './certs.ts'
import {
  INVITES_FILE,
  ISSUED_FILE,
  inviteId,
  loadList,
  type MeshCredentials,
  newSecret,
  parseSwarmKey,
  REVOCATIONS_FILE,
  type StoredInvite,
  saveCert,
  saveList,
} from './files.ts'

export const memberSpec: RpcSpec<MemberRequest, MemberReply> = {
  protocol: MEMBER_PROTOCOL,
  maxMessageBytes: MEMBER_MAX_MESSAGE_BYTES,
  requests: memberRequestCodec,
  replies: memberReplyCodec,
  matches: memberReplyMatches,
}

export const DAY_MS = 24 * 3600_000
export const DEFAULT_CERT_VALIDITY_MS = 30 * DAY_MS
/** How long a connected peer has to prove membership before we hang up. */
const PROVE_WITHIN_MS = 10_000
const HELLO_TIMEOUT_MS = 5000
/** Redemption attempts one connection may make (secrets are 256-bit; this only bounds the work). */
const MAX_REDEEMS_PER_PEER = 5
/** A peer we hung up on for not proving membership is refused this long (it would be re-dialled otherwise). */
const BLOCK_AFTER_HANGUP_MS = 30_000
/** After a failed hello, don't ask the same peer again sooner than this (each gated stream would). */
const RETRY_HELLO_MS = 2000

export function revocationTopic(mesh: string): string {
  return `gridnode/${mesh}/membership/1`
}

export interface MemberEntry {
  peer: string
  expires: number
  lastSeen: number
}

export interface MembershipOptions {
  dataDir: string
  creds: MeshCredentials
  log: Logger
  certValidityMs?: number
  /** A revoked peer's tasks must be re-queued: the daemon passes the driver's peer-gone here. */
  onRevoked?(peer: string): void
}

export class Membership {
  readonly mesh: string
  private readonly opts: MembershipOptions
  private readonly creds: MeshCredentials
  private readonly validityMs: number
  private node?: GridLibp2p
  private self = ''
  private cert?: Signed<Certificate>
  private readonly members = new Map<string, MemberEntry>()
  private readonly revoked = new Map<string, Signed<Revocation>>()
  private readonly inflight = new Map<string, Promise<boolean>>()
  private readonly hangups = new Map<string, NodeJS.Timeout>()
  private readonly redeems = new Map<string, number>()
  private readonly blockedUntil = new Map<string, number>()
  private readonly helloFailedAt = new Map<string, number>()
  private readonly waiting = new Map<string, Array<() => void>>()
  private renewTimer?: NodeJS.Timeout
  private stopped = false
  /** Messages and peers refused, by reason (status shows them). */
  readonly refused: Record<string, number> = {}

  private constructor(opts: MembershipOptions) {
    this.opts = opts
    this.creds = opts.creds
    this.mesh = opts.creds.info.name
    this.validityMs = opts.certValidityMs ?? DEFAULT_CERT_VALIDITY_MS
  }

  /** Loads the revocations kept in the data dir (each re-verified) before the node exists, for the gater. */
  static async open(opts: MembershipOptions): Promise<Membership> {
    const m = new Membership(opts)
    for (const b64 of loadList<string>(opts.dataDir, REVOCATIONS_FILE)) {
      try {
        const r = await openRevocation(Buffer.from(b64, 'base64'), opts.creds.meshPublicKey, m.mesh)
        m.revoked.set(r.value.peer, r)
      } catch (err) {
        opts.log.warn({ err: (err as Error).message }, 'ignoring a bad stored revocation')
      }
    }
    return m
  }

  get isIssuer(): boolean {
    return this.creds.meshPrivateKey !== undefined
  }

  /** Refuses revoked peers before any handshake completes (libp2p's connection gater). */
  gater(): ConnectionGater {
    const deny = (peer: PeerId) => this.isRevoked(peer.toString()) || this.isBlocked(peer.toString())
    return {
      denyDialPeer: deny,
      denyInboundEncryptedConnection: deny,
      denyOutboundEncryptedConnection: deny,
    }
  }

  isRevoked(peer: string): boolean {
    return this.revoked.has(peer)
  }

  private isBlocked(peer: string): boolean {
    const until = this.blockedUntil.get(peer)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.blockedUntil.delete(peer)
    return false
  }

  /** True for this node and for peers whose certificate we verified, unexpired and not revoked. */
  isMember(peer: string): boolean {
    if (peer === this.self) return true
    const m = this.members.get(peer)
    return m !== undefined && m.expires > Date.now() && !this.revoked.has(peer)
  }

  /**
   * Before the node starts: our certificate, the member protocol and the
   * middleware on `gated`, so no connection can come in before a peer can be
   * asked for (and can ask for) a certificate.
   */
  async attach(node: GridLibp2p, gated: string[]): Promise<void> {
    this.node = node
    this.self = node.peerId.toString()
    await this.loadOwnCertificate()
    await registerRpc(
      node,
      memberSpec,
      { handle: (peer, req) => this.serve(peer, req) },
      {
        timeoutMs: 10_000,
        limits: { maxInboundStreams: 4, maxOutboundStreams: 4 },
        onError: (peer, err) => this.opts.log.debug({ peer, err: err.message }, 'member stream closed'),
      },
    )
    copyMiddlewareLists(node)
    for (const protocol of gated) node.use(protocol, (s, c, next) => this.gate(s, c, next))
    node.addEventListener('peer:connect', (evt) => this.onConnect(evt.detail.toString()))
    node.addEventListener('peer:disconnect', (evt) => {
      const peer = evt.detail.toString()
      clearTimeout(this.hangups.get(peer))
      this.hangups.delete(peer)
      this.redeems.delete(peer)
      this.helloFailedAt.delete(peer)
      const m = this.members.get(peer)
      if (m) m.lastSeen = Date.now()
    })
  }

  /** Once the node runs: revocations over gossip, certificate renewal. */
  start(): void {
    const node = this.node
    if (node === undefined) throw new Error('Membership.start before attach')
    const pubsub = node.services.pubsub
    const topic = revocationTopic(this.mesh)
    pubsub.topicValidators.set(topic, async (_peer, msg) => {
      if (msg.type !== 'signed') return TopicValidatorResult.Reject
      try {
        const r = await openRevocation(msg.data, this.creds.meshPublicKey, this.mesh)
        if (this.revoked.has(r.value.peer)) return TopicValidatorResult.Ignore
        this.applyRevocation(r)
        return TopicValidatorResult.Accept
      } catch (err) {
        this.count('bad-revocation')
        this.opts.log.warn({ from: msg.from.toString(), err: (err as Error).message }, 'refused a revocation')
        return TopicValidatorResult.Reject
      }
    })
    pubsub.subscribe(topic)
    this.scheduleRenewal()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.renewTimer)
    for (const t of this.hangups.values()) clearTimeout(t)
    this.hangups.clear()
  }

  // -- proving membership on each connection ------------------------------------------

  /** Resolves true once `peer` is a verified member (asking it if needed), false if it cannot prove it. */
  ensure(peer: string, timeoutMs = HELLO_TIMEOUT_MS): Promise<boolean> {
    if (this.isMember(peer)) return Promise.resolve(true)
    if (this.revoked.has(peer) || this.stopped || this.isBlocked(peer)) return Promise.resolve(false)
    const failedAt = this.helloFailedAt.get(peer)
    if (failedAt !== undefined && Date.now() - failedAt < RETRY_HELLO_MS) return Promise.resolve(false)
    let p = this.inflight.get(peer)
    if (p === undefined) {
      p = this.hello(peer, timeoutMs)
        .then((ok) => {
          if (ok) this.helloFailedAt.delete(peer)
          else this.helloFailedAt.set(peer, Date.now())
          return ok
        })
        .finally(() => this.inflight.delete(peer))
      this.inflight.set(peer, p)
    }
    return p
  }

  private async hello(peer: string, timeoutMs: number): Promise<boolean> {
    if (this.cert === undefined || this.node === undefined) return false
    const client = rpcClient(memberSpec, (signal) =>
      this.node!.dialProtocol(peerIdFromString(peer), MEMBER_PROTOCOL, { signal }),
    )
    try {
      const rep = await client.request({ t: 'hello', cert: this.cert.bytes }, { timeoutMs })
      if (rep.t !== 'hello-ok') return false
      await this.admit(peer, rep.cert)
      for (const bytes of rep.revocations) await this.learnRevocation(bytes)
      return this.isMember(peer)
    } catch (err) {
      // The peer may have proved itself through its own hello meanwhile.
      if (this.isMember(peer)) return true
      this.opts.log.debug({ peer, err: (err as Error).message }, 'membership not proved')
      return false
    } finally {
      client.close()
    }
  }

  /** Verifies a certificate presented by `peer` and records it as a member. Throws MembershipError. */
  private async admit(peer: string, certBytes: Uint8Array): Promise<void> {
    const cert = await openCertificate(certBytes, this.creds.meshPublicKey, this.mesh, peer)
    if (cert.value.expires <= Date.now()) {
      throw new MembershipError('GN_CERT_EXPIRED', `the membership certificate of ${peer} has expired`)
    }
    if (this.revoked.has(peer)) throw new MembershipError('GN_REVOKED', `${peer} was revoked from this mesh`)
    const known = this.members.get(peer)
    this.members.set(peer, {
      peer,
      expires: Math.max(known?.expires ?? 0, cert.value.expires),
      lastSeen: Date.now(),
    })
    clearTimeout(this.hangups.get(peer))
    this.hangups.delete(peer)
    this.helloFailedAt.delete(peer)
    this.blockedUntil.delete(peer)
    for (const wake of this.waiting.get(peer) ?? []) wake()
    this.waiting.delete(peer)
  }

  /** Resolves true once `peer` is admitted (by either side's hello), false after `ms`. */
  private admitted(peer: string, ms: number): Promise<boolean> {
    if (this.isMember(peer)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const list = this.waiting.get(peer) ?? []
      const wake = () => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => {
        const rest = (this.waiting.get(peer) ?? []).filter((w) => w !== wake)
        if (rest.length > 0) this.waiting.set(peer, rest)
        else this.waiting.delete(peer)
        resolve(this.isMember(peer))
      }, ms)
      timer.unref()
      list.push(wake)
      this.waiting.set(peer, list)
    })
  }

  /** Our certificate's signed bytes (adverts carry it). */
  certificate(): Uint8Array | undefined {
    return this.cert?.bytes
  }

  /**
   * Admits a peer we have not met on the strength of a certificate it signed
   * a gossip message with (gossip's signature proves the key, as Noise does
   * on a connection). False for a bad, expired or revoked one.
   */
  async admitByCertificate(peer: string, cert: Uint8Array): Promise<boolean> {
    if (this.isMember(peer)) return true
    try {
      await this.admit(peer, cert)
      return true
    } catch (err) {
      this.count('bad-certificate')
      this.opts.log.debug({ peer, err: (err as Error).message }, 'refused a certificate carried by an advert')
      return false
    }
  }

  private onConnect(peer: string): void {
    if (this.isMember(peer)) return
    void this.ensure(peer).then((ok) => {
      if (!ok) this.hangUpLater(peer)
    })
  }

  /** A peer that has not proved membership within PROVE_WITHIN_MS is disconnected (a joiner redeems meanwhile). */
  private hangUpLater(peer: string, ms = PROVE_WITHIN_MS): void {
    if (this.hangups.has(peer) || this.stopped) return
    const timer = setTimeout(() => {
      this.hangups.delete(peer)
      if (this.isMember(peer)) return
      this.count('not-a-member')
      this.opts.log.info({ peer }, 'hanging up on a peer that did not prove membership')
      this.blockedUntil.set(peer, Date.now() + BLOCK_AFTER_HANGUP_MS)
      if (this.blockedUntil.size > 10_000)
        this.blockedUntil.delete(this.blockedUntil.keys().next().value as string)
      this.node?.hangUp(peerIdFromString(peer)).catch(() => {})
    }, ms)
    timer.unref()
    this.hangups.set(peer, timer)
  }

  /** Stream middleware for every gated protocol: members only, both ways. */
  private gate(
    stream: Stream,
    connection: Connection,
    next: (s: Stream, c: Connection) => void,
  ): Promise<void> {
    const peer = connection.remotePeer.toString()
    if (this.isMember(peer)) {
      next(stream, connection)
      return Promise.resolve()
    }
    // Our hello may fail while the peer is still proving itself through its own (a node
    // that just joined, a hello crossing ours): wait for either before refusing the stream,
    // since a gossip or DHT stream refused here is not opened again on this connection.
    return this.ensure(peer)
      .then((ok) => ok || this.admitted(peer, HELLO_TIMEOUT_MS))
      .then((ok) => {
        if (ok) return next(stream, connection)
        this.count('stream-from-non-member')
        this.hangUpLater(peer)
        throw new MembershipError('GN_NOT_A_MEMBER', `${peer} has not proved membership of mesh ${this.mesh}`)
      })
  }

  // -- the member protocol, server side -------------------------------------------------

  private async serve(peer: string, req: MemberRequest): Promise<MemberReply> {
    switch (req.t) {
      case 'hello': {
        try {
          await this.admit(peer, req.cert)
        } catch (err) {
          this.count('bad-certificate')
          this.opts.log.warn({ peer, err: (err as Error).message }, 'refused a membership certificate')
          this.hangUpLater(peer, 100)
          throw err
        }
        if (this.cert === undefined)
          throw new MembershipError('GN_NO_CERT', 'this node has no certificate yet')
        const revocations = [...this.revoked.values()].slice(-MAX_HELLO_REVOCATIONS).map((r) => r.bytes)
        return { t: 'hello-ok', cert: this.cert.bytes, revocations }
      }
      case 'redeem':
        return { t: 'redeemed', cert: await this.redeem(peer, req.secret) }
      case 'renew': {
        if (!this.isMember(peer)) {
          this.count('renew-from-non-member')
          throw new MembershipError('GN_NOT_A_MEMBER', 'only members renew certificates')
        }
        return { t: 'renewed', cert: (await this.issue(peer)).bytes }
      }
    }
  }

  private async redeem(peer: string, secret: Uint8Array): Promise<Uint8Array> {
    if (!this.isIssuer) {
      throw new MembershipError(
        'GN_NOT_ISSUER',
        'this node does not hold the mesh key and cannot admit members',
      )
    }
    const tries = (this.redeems.get(peer) ?? 0) + 1
    this.redeems.set(peer, tries)
    if (tries > MAX_REDEEMS_PER_PEER) {
      this.count('redeem-flood')
      throw new MembershipError('GN_RATE_LIMITED', 'too many invitation attempts on this connection')
    }
    if (this.revoked.has(peer))
      throw new MembershipError('GN_REVOKED', 'this peer ID was revoked from the mesh')
    const id = inviteId(secret)
    const invites = loadList<StoredInvite>(this.opts.dataDir, INVITES_FILE)
    const inv = invites.find((i) => i.id === id)
    const now = Date.now()
    if (inv === undefined) {
      this.count('unknown-invitation')
      throw new MembershipError('GN_INVITE_UNKNOWN', 'this invitation was already used or never issued here')
    }
    if (inv.expires <= now) throw new MembershipError('GN_INVITE_EXPIRED', 'this invitation has expired')
    inv.usesLeft--
    saveList(
      this.opts.dataDir,
      INVITES_FILE,
      invites.filter((i) => i.usesLeft > 0 && i.expires > now),
    )
    const cert = await this.issue(peer)
    this.opts.log.info({ peer, usesLeft: inv.usesLeft }, 'admitted a new member by invitation')
    return cert.bytes
  }

  private async issue(peer: string): Promise<Signed<Certificate>> {
    const key = this.creds.meshPrivateKey
    if (key === undefined) throw new MembershipError('GN_NOT_ISSUER', 'this node cannot sign certificates')
    const now = Date.now()
    const cert = await issueCertificate(key, {
      mesh: this.mesh,
      peer,
      issued: now,
      expires: now + this.validityMs,
    })
    const issued = loadList<{ peer: string; issued: number; expires: number }>(this.opts.dataDir, ISSUED_FILE)
    const rest = issued.filter((i) => i.peer !== peer)
    saveList(this.opts.dataDir, ISSUED_FILE, [...rest, { peer, issued: now, expires: cert.value.expires }])
    return cert
  }

  // -- our own certificate -----------------------------------------------------------------

  private async loadOwnCertificate(): Promise<void> {
    const stored = this.creds.cert
    if (stored !== undefined) {
      try {
        this.cert = await openCertificate(stored, this.creds.meshPublicKey, this.mesh, this.self)
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'stored membership certificate is not valid')
      }
    }
    if (this.isIssuer && (this.cert === undefined || this.needsRenewal())) await this.renew()
    if (this.cert === undefined) {
      throw new MembershipError(
        'GN_NO_CERT',
        `this data dir has no valid membership certificate for mesh ${this.mesh}; join again with gridnode start --join <token>`,
      )
    }
    if (this.cert.value.expires <= Date.now()) {
      this.opts.log.warn(
        { expires: new Date(this.cert.value.expires).toISOString() },
        'membership certificate expired; asking the issuer to renew it',
      )
    }
  }

  private needsRenewal(): boolean {
    const c = this.cert?.value
    if (c === undefined) return true
    return c.expires - Date.now() < (c.expires - c.issued) / 3
  }

  private scheduleRenewal(): void {
    if (this.stopped || this.cert === undefined) return
    const c = this.cert.value
    const at = c.expires - (c.expires - c.issued) / 3
    const delay = Math.min(Math.max(at - Date.now(), 1000), 6 * 3600_000)
    this.renewTimer = setTimeout(() => {
      this.renew()
        .catch((err) =>
          this.opts.log.warn({ err: (err as Error).message }, 'certificate renewal failed; will retry'),
        )
        .finally(() => this.scheduleRenewal())
    }, delay)
    this.renewTimer.unref()
  }

  /** A fresh certificate: signed here on the issuer, asked of the issuer elsewhere. Peers get it by hello. */
  async renew(): Promise<void> {
    if (!this.needsRenewal()) return
    let bytes: Uint8Array
    if (this.isIssuer) {
      bytes = (await this.issue(this.self)).bytes
    } else {
      const node = this.node
      if (node === undefined) return
      const client = rpcClient(memberSpec, (signal) =>
        node.dialProtocol(peerIdFromString(this.creds.info.issuer), MEMBER_PROTOCOL, { signal }),
      )
      try {
        const rep = await client.request({ t: 'renew' }, { timeoutMs: HELLO_TIMEOUT_MS })
        if (rep.t !== 'renewed') return
        bytes = rep.cert
      } finally {
        client.close()
      }
    }
    this.cert = await openCertificate(bytes, this.creds.meshPublicKey, this.mesh, this.self)
    saveCert(this.opts.dataDir, bytes)
    this.opts.log.info(
      { expires: new Date(this.cert.value.expires).toISOString() },
      'membership certificate renewed',
    )
    // Tell connected members: their record of our expiry must move too.
    for (const peer of this.members.keys()) {
      if (this.isMember(peer)) void this.hello(peer, HELLO_TIMEOUT_MS)
    }
  }

  // -- invitations and revocations --------------------------------------------------------------

  /** A join token for one or more new machines. Only the issuer can admit members. */
  invite(opts: { expiresMs: number; uses: number }): { token: string; expires: string; uses: number } {
    if (!this.isIssuer || this.node === undefined) {
      throw new MembershipError(
        'GN_NOT_ISSUER',
        `only the node that created mesh "${this.mesh}" (peer ${this.creds.info.issuer}) can invite; run gridnode invite there`,
      )
    }
    const addrs = this.node
      .getMultiaddrs()
      .map(String)
      .filter((a) => !a.includes('/0.0.0.0/') && !a.includes('/::/'))
    if (addrs.length === 0) {
      throw new MembershipError('GN_NO_ADDRESS', 'this node has no dialable address to put in an invitation')
    }
    const secret = newSecret()
    const expires = Date.now() + opts.expiresMs
    const invites = loadList<StoredInvite>(this.opts.dataDir, INVITES_FILE).filter(
      (i) => i.expires > Date.now(),
    )
    invites.push({ id: inviteId(secret), created: Date.now(), expires, usesLeft: opts.uses })
    saveList(this.opts.dataDir, INVITES_FILE, invites)
    const token = encodeToken({
      mesh: this.mesh,
      psk: parseSwarmKey(this.creds.swarmKey),
      meshKey: Buffer.from(this.creds.info.meshKey, 'base64'),
      issuer: this.self,
      addrs: addrs.slice(0, 16),
      secret,
      expires,
    })
    return { token, expires: new Date(expires).toISOString(), uses: opts.uses }
  }

  /** Signs a revocation, applies it here and gossips it to every member. */
  async revoke(peer: string): Promise<{ peer: string; at: string }> {
    const key = this.creds.meshPrivateKey
    if (key === undefined || this.node === undefined) {
      throw new MembershipError(
        'GN_NOT_ISSUER',
        `only the node that created mesh "${this.mesh}" (peer ${this.creds.info.issuer}) can revoke members`,
      )
    }
    if (!isValidPeerId(peer))
      throw new MembershipError('GN_BAD_FLAG', `${JSON.stringify(peer)} is not a peer ID`)
    if (peer === this.self) throw new MembershipError('GN_BAD_FLAG', 'a node cannot revoke itself')
    const existing = this.revoked.get(peer)
    const r = existing ?? (await issueRevocation(key, { mesh: this.mesh, peer, at: Date.now() }))
    // Gossiped before it is applied here, while the revoked node is still connected: it hears it too.
    await this.node.services.pubsub.publish(revocationTopic(this.mesh), r.bytes).catch((err: Error) => {
      this.opts.log.warn({ err: err.message }, 'revocation gossip failed; hellos will carry it')
    })
    if (!existing) this.applyRevocation(r)
    return { peer, at: new Date(r.value.at).toISOString() }
  }

  private async learnRevocation(bytes: Uint8Array): Promise<void> {
    try {
      const r = await openRevocation(bytes, this.creds.meshPublicKey, this.mesh)
      if (!this.revoked.has(r.value.peer)) this.applyRevocation(r)
    } catch (err) {
      this.count('bad-revocation')
      this.opts.log.warn({ err: (err as Error).message }, 'ignored a bad revocation')
    }
  }

  private applyRevocation(r: Signed<Revocation>): void {
    const peer = r.value.peer
    this.revoked.set(peer, r)
    this.members.delete(peer)
    saveList(
      this.opts.dataDir,
      REVOCATIONS_FILE,
      [...this.revoked.values()].map((x) => Buffer.from(x.bytes).toString('base64')),
    )
    if (peer === this.self) {
      this.opts.log.error(
        { mesh: this.mesh, at: new Date(r.value.at).toISOString() },
        'this node was revoked from the mesh: members refuse it from now on; ask the mesh issuer for a new invitation and start with another --data-dir',
      )
      return
    }
    this.opts.log.warn({ peer }, 'member revoked; disconnecting it')
    this.opts.onRevoked?.(peer)
    // It is no member from now on (every request of its is refused); the connection stays a
    // moment so that the revocation's gossip reaches it too, and it can tell its user.
    const hangUp = setTimeout(
      () => this.node?.hangUp(peerIdFromString(peer)).catch(() => {}),
      REVOKED_HANGUP_MS,
    )
    hangUp.unref()
  }

  // -- reporting -------------------------------------------------------------------------------------

  list(): {
    mesh: string
    issuer: string
    self: { peer: string; expires: string | null; revokedAt?: string }
    members: Array<{ peer: string; expires: string; lastSeenMs: number | null; connected: boolean }>
    revocations: Array<{ peer: string; at: string }>
  } {
    const now = Date.now()
    const connected = new Set(this.node?.getConnections().map((c) => c.remotePeer.toString()) ?? [])
    const members = [...this.members.values()]
      .filter((m) => !this.revoked.has(m.peer))
      .map((m) => ({
        peer: m.peer,
        expires: new Date(m.expires).toISOString(),
        lastSeenMs: connected.has(m.peer) ? 0 : now - m.lastSeen,
        connected: connected.has(m.peer),
      }))
    return {
      mesh: this.mesh,
      issuer: this.creds.info.issuer,
      self: {
        peer: this.self,
        expires: this.cert ? new Date(this.cert.value.expires).toISOString() : null,
        ...(this.revoked.has(this.self)
          ? { revokedAt: new Date(this.revoked.get(this.self)!.value.at).toISOString() }
          : {}),
      },
      members,
      revocations: [...this.revoked.values()].map((r) => ({
        peer: r.value.peer,
        at: new Date(r.value.at).toISOString(),
      })),
    }
  }

  private count(reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1
  }
}

/** How long a revoked peer's connections stay after the revocation, so its gossip reaches it. */
const REVOKED_HANGUP_MS = 2000

/**
 * libp2p 3.3's connection pushes the protocol handler onto the very array
 * `registrar.getMiddleware()` returns (connection.js, onIncomingStream), so
 * with middleware registered every inbound stream appends one more call of
 * the handler and the next stream runs them all. Hand out copies instead.
 */
function copyMiddlewareLists(node: GridLibp2p): void {
  const registrar = (
    node as unknown as { components: { registrar: { getMiddleware(p: string): unknown[] } } }
  ).components.registrar
  const original = registrar.getMiddleware.bind(registrar)
  registrar.getMiddleware = (protocol: string) => [...original(protocol)]
}

export function randomMeshName(): string {
  return `mesh-${randomBytes(3).toString('hex')}`
}
