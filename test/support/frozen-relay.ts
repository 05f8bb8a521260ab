import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'

export interface FreezableRelay {
  /** `url` with its host and port replaced by the relay's. */
  url: string
  /** From now on nothing passes either way; connections stay open, and a side's close still reaches the other. */
  freeze: () => void
  close: () => Promise<void>
}

/**
 * A TCP relay on loopback in front of the server of `url` (a
 * `postgres://host:port/…` URL, or a socket folder as the host), that can freeze: what a server looks like
 * when its processes stop or the network between drops every packet
 * without a reset: connected, never answering.
 */
export async function freezableRelay (url: string): Promise<FreezableRelay> {
  const target = new URL(url)
  const sockets = new Set<Socket>()
  let frozen = false
  const server = createServer((client) => {
    // A host that is a folder (percent-encoded in the URL, as the embedded server's is) names its Unix socket.
    const host = decodeURIComponent(target.hostname)
    const port = Number(target.port || 5432)
    const upstream = host.startsWith('/') ? connect({ path: `${host}/.s.PGSQL.${port}` }) : connect({ host, port })
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from)
      from.on('data', (chunk: Buffer) => { if (!frozen) to.write(chunk) })
      from.on('error', () => {})
      from.on('close', () => { sockets.delete(from); to.destroy() })
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const relayed = new URL(url)
  relayed.hostname = '127.0.0.1'
  relayed.port = String((server.address() as AddressInfo).port)
  return {
    url: relayed.toString(),
    freeze: () => { frozen = true },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => { server.close(resolve) })
    }
  }
}
