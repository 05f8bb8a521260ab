import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** Ports handed out by this process, so two children of one test file never get the same one. */
const handedOut = new Set<number>()

/** The first port of the kernel's ephemeral range: listen(0) and outgoing connections take ports from there up. */
function ephemeralStart (): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(start) && start > 12_000 ? start : 32_768
  } catch {
    return 32_768
  }
}

const canListen = async (port: number): Promise<boolean> => new Promise((resolve) => {
  const server = createServer()
  server.once('error', () => { resolve(false) })
  server.listen(port, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
})

/**
 * A TCP port on 127.0.0.1 that nothing listens on, for a child process
 * (PostgreSQL, SeaweedFS, nginx, a Heimdall process) to listen on. Chosen at
 * random below the kernel's ephemeral range, where neither listen(0) nor an
 * outgoing connection takes ports: a port that listen(0) had found free was
 * free only until the kernel gave it to the next connection, and CI lost
 * that race (EADDRINUSE, then a hook waiting out its timeout).
 */
export async function freePort (): Promise<number> {
  const low = 10_000
  const high = ephemeralStart() - 1
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low))
    if (handedOut.has(port) || !(await canListen(port))) continue
    handedOut.add(port)
    return port
  }
  throw new Error(`no free port found between ${low} and ${high}`)
}
