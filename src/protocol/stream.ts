/**
 * Framing and request/response plumbing over libp2p 3 message streams.
 *
 * `serveRequests` is the server loop (pipelined requests on one long-lived
 * stream, answered in order); `RequestClient` is the client (one lazily opened
 * stream per peer and protocol, pipelining, FIFO replies, reopening after
 * failures). Neither knows any message schema: codecs come in as functions.
 */
export * from './frames.ts'
export * from './request-client.ts'
export * from './serve.ts'
