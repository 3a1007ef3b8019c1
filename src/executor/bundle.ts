/** The bundler lives in the shared vocabulary (src/domain/bundle.ts: the client makes bundles, workers load them). */
export { type Bundle, type BundleOptions, bundleModule } from '../domain/bundle.ts'
