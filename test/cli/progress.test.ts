import { describe, expect, it } from 'vitest'
import { createProgress } from '../../src/client/progress.ts'

/** A terminal of `columns` columns that keeps what is written to it. */
function terminal (columns: number): { isTTY: true, columns: number, written: string[], write: (text: string) => boolean } {
  const written: string[] = []
  return { isTTY: true, columns, written, write: (text: string) => { written.push(text); return true } }
}

/** The frames drawn: what follows each carriage return, without the clear-to-end-of-line. */
const frames = (written: string[]): string[] => written.filter((w) => w.startsWith('\r')).map((w) => w.slice(1).replace('\x1b[K', ''))

describe('the progress line on a terminal', () => {
  it.each([120, 80, 60, 40, 20])('fits %i columns, so the carriage return redraws the whole line', (columns) => {
    const out = terminal(columns)
    let at = 0
    const progress = createProgress({ total: 3 * 1024 ** 3, out: out as unknown as NodeJS.WritableStream & { isTTY: boolean, columns: number }, now: () => at })
    for (let sent = 0; sent < 3 * 1024 ** 3; sent += 100 * 1024 ** 2) { at += 1000; progress.update(sent) }
    const drawn = frames(out.written)
    expect(drawn.length).toBeGreaterThan(5)
    for (const frame of drawn) expect(frame.length, frame).toBeLessThan(columns)
    const last = drawn.at(-2) ?? ''
    if (columns >= 80) expect(last).toMatch(/^\[[#-]{10,30}\] +\d+ % [\d.]+ GiB of 3\.0 GiB, [\d.]+ MiB\/s, ETA \d\d:\d\d$/)
    else if (columns >= 60) expect(last).toMatch(/^ *\d+ % [\d.]+ GiB of 3\.0 GiB, /)
    else expect(last).toMatch(/^ *\d+ % /)
  })

  it('takes a terminal that reports no width (0 columns) as 80 columns wide', () => {
    const out = terminal(0)
    createProgress({ total: 100, out: out as unknown as NodeJS.WritableStream & { isTTY: boolean, columns: number }, now: () => 1000 }).update(10)
    expect(frames(out.written)[0]).toMatch(/^\[#{3}-{27}\] {2}10 % 10 B of 100 B, …, ETA --:--$/)
  })
})
