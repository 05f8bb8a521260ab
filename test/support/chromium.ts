import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** Debian's Chromium; `npx playwright install` cannot download a browser here. */
export const CHROMIUM = '/usr/bin/chromium'

/** Whether the browser tests can run: under CI a missing Chromium is a failure, elsewhere a loud skip. */
export function chromiumAvailable (what: string): boolean {
  if (existsSync(CHROMIUM)) return true
  if (process.env.CI === 'true') throw new Error(`Chromium is required under CI (${CHROMIUM}; Debian: apt-get install chromium)`)
  console.warn(`\n!!!!! SKIPPING ${what}: ${CHROMIUM} not found (Debian: apt-get install chromium)\n`)
  return false
}

/** Headless, dialing nothing on its own; WebGL without a GPU through SwiftShader, which recent Chromium enables only when asked. */
export async function launchChromium (): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--enable-unsafe-swiftshader', '--use-angle=swiftshader']
  })
}

/**
 * Runs in the page: copies the preview's WebGL canvas (drawn with
 * preserveDrawingBuffer) into a 2D canvas and returns the shares of its
 * pixels that are not the scene's background, #1d2230 (`drawn`), and that
 * are the test avatars' orange and yellow texture: red high, blue low
 * (`textured`).
 */
export const CANVAS_PIXELS = `(() => {
  const canvas = document.querySelector('canvas')
  const copy = document.createElement('canvas')
  copy.width = canvas.width
  copy.height = canvas.height
  const ctx = copy.getContext('2d')
  ctx.drawImage(canvas, 0, 0)
  const { data } = ctx.getImageData(0, 0, copy.width, copy.height)
  let textured = 0, drawn = 0
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]]
    if (Math.abs(r - 0x1d) + Math.abs(g - 0x22) + Math.abs(b - 0x30) > 30) drawn++
    if (r > 150 && r - b > 100 && g > 40) textured++
  }
  const all = data.length / 4
  return { textured: textured / all, drawn: drawn / all }
})()`
