/**
 * Control API for the policy: GET /v1/policy (the file and what is in force
 * now), POST /v1/policy {key, value} (validated, written, applied at once).
 * With GRIDNODE_TEST_HOOKS=1 only: POST /v1/test/owner-busy {busy: true |
 * false | null} forces the owner policy's busy signal (null measures again).
 */
import { GridnodeError } from '../../errors.ts'
import { ApiError, type ApiServer } from '../api.ts'
import type { PolicyController } from './controller.ts'

export function registerPolicyRoutes(
  api: ApiServer,
  policy: PolicyController,
  env: NodeJS.ProcessEnv = process.env,
): void {
  api.route('GET', '/v1/policy', () => policy.view())
  api.route('POST', '/v1/policy', (req) => {
    const body = req.body as { key?: unknown; value?: unknown } | undefined
    if (typeof body?.key !== 'string' || body.value === undefined)
      throw new ApiError(400, 'GN_BAD_POLICY', 'POST /v1/policy takes {"key": "...", "value": ...}')
    try {
      policy.set(body.key, body.value)
    } catch (err) {
      if (err instanceof GridnodeError) throw new ApiError(400, err.code, err.message)
      throw err
    }
    return policy.view()
  })
  if (env.GRIDNODE_TEST_HOOKS === '1') {
    api.route('POST', '/v1/test/owner-busy', (req) => {
      const busy = (req.body as { busy?: unknown } | undefined)?.busy
      if (busy !== true && busy !== false && busy !== null)
        throw new ApiError(400, 'GN_BAD_INPUT', 'expected {"busy": true | false | null}')
      policy.monitor.forced = busy ?? undefined
      policy.apply('test-hook')
      return policy.view()
    })
  }
}
