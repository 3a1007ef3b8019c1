/**
 * One client per peer (each holds one long-lived stream): made on first use,
 * closed and forgotten when the peer goes (`peer:disconnect`, advert expiry).
 */
export class PeerClients<C extends { close(): void }> {
  private readonly clients = new Map<string, C>()
  private readonly make: (peerId: string) => C

  constructor(make: (peerId: string) => C) {
    this.make = make
  }

  get(peerId: string): C {
    let client = this.clients.get(peerId)
    if (client === undefined) {
      client = this.make(peerId)
      this.clients.set(peerId, client)
    }
    return client
  }

  /** Closes and forgets the peer's client, if any. */
  drop(peerId: string): void {
    const client = this.clients.get(peerId)
    if (client === undefined) return
    this.clients.delete(peerId)
    client.close()
  }

  closeAll(): void {
    for (const peerId of [...this.clients.keys()]) this.drop(peerId)
  }

  get size(): number {
    return this.clients.size
  }
}
