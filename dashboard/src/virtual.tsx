/** A virtual list: fixed row height, only the rows in view (plus a margin) are in the DOM. */
import type { ComponentChildren } from 'preact'
import { useState } from 'preact/hooks'

export function VirtualList<T>(props: {
  items: readonly T[]
  rowHeight: number
  height: number
  row: (item: T, index: number) => ComponentChildren
  testid?: string
}) {
  const [top, setTop] = useState(0)
  const { items, rowHeight, height } = props
  const first = Math.max(0, Math.floor(top / rowHeight) - 5)
  const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + 5)
  const rows: ComponentChildren[] = []
  for (let i = first; i < last; i++) {
    rows.push(
      <div class="vrow" style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }} key={i}>
        {props.row(items[i], i)}
      </div>,
    )
  }
  return (
    <div
      class="vlist"
      style={{ height: `${Math.min(height, Math.max(rowHeight, items.length * rowHeight))}px` }}
      onScroll={(e) => setTop((e.currentTarget as HTMLDivElement).scrollTop)}
      data-testid={props.testid}
      data-rows={items.length}
    >
      <div style={{ height: `${items.length * rowHeight}px`, position: 'relative' }}>{rows}</div>
    </div>
  )
}
