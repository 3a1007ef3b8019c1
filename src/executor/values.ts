/** The value codec lives in the shared vocabulary (src/domain/values.ts); kept here for older imports. */
export { decodeOwned, decodeValue, encodeValue } from '../domain/values.ts'
