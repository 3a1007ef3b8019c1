/** The api.json / api.token contract is shared vocabulary: src/domain/api-files.ts (the client reads it). */
export { API_FILE, type ApiInfo, processAlive, readApiInfo, TOKEN_FILE } from '../domain/api-files.ts'
