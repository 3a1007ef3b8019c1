// The cipher module under @libp2p/pnet (no types of its own): what xsalsa20-fix.ts uses.
declare module 'xsalsa20' {
  interface XSalsa20Cipher {
    update(input: Uint8Array, output?: Uint8Array): Uint8Array
  }
  const XSalsa20: (nonce: Uint8Array, key: Uint8Array) => XSalsa20Cipher
  export default XSalsa20
}
