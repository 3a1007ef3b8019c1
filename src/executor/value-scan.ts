/** The value pre-scanner lives in the shared vocabulary (src/domain/value-scan.ts); kept here for older imports. */
export { MAX_DEPTH, SPARSE_SLACK, scanValue } from '../domain/value-scan.ts'
