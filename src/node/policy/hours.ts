/**
 * Lending hours: `19-07` (7 pm to 7 am, across midnight), `12:00-13:30`, or a
 * comma list of such windows, in the machine's local time. '' = always.
 */
import { GridnodeError } from '../../errors.ts'

export interface Window {
  /** Minutes after midnight. */
  from: number
  to: number
}

function minutes(text: string, whole: string): number {
  const m = /^(\d{1,2})(?::(\d{2}))?$/.exec(text)
  const h = m ? Number(m[1]) : Number.NaN
  const min = m?.[2] ? Number(m[2]) : 0
  if (!m || h > 24 || min > 59 || (h === 24 && min > 0))
    throw new GridnodeError(
      'GN_BAD_POLICY',
      `hours ${JSON.stringify(whole)}: expected windows like 19-07 or 12:00-13:30,19-07 (24 h clock)`,
    )
  return h * 60 + min
}

export function parseHours(text: string): Window[] {
  if (text.trim() === '') return []
  return text.split(',').map((part) => {
    const [a, b, extra] = part.trim().split('-')
    if (b === undefined || extra !== undefined) minutes('x', text)
    const w = { from: minutes(a, text), to: minutes(b, text) }
    if (w.from === w.to) minutes('x', text)
    return w
  })
}

/** Is `date` (local time) inside one of the windows? No windows = always. */
export function inHours(windows: Window[], date: Date): boolean {
  if (windows.length === 0) return true
  const m = date.getHours() * 60 + date.getMinutes()
  return windows.some((w) => (w.from < w.to ? m >= w.from && m < w.to : m >= w.from || m < w.to))
}
