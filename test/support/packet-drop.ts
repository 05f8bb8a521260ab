import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Whether this process may add firewall rules: root, with iptables. */
export function canDropPackets (): boolean {
  return process.getuid?.() === 0 && spawnSync('iptables', ['-w', '-n', '-L', 'INPUT'], { stdio: 'ignore' }).status === 0
}

/**
 * Drops every packet between two loopback ports, both ways: what a peer
 * whose host lost power looks like (its kernel answers nothing, not even a
 * TCP keepalive probe), where a stopped or killed process would still be
 * answered for, or closed, by its kernel. Returns what removes exactly these
 * rules; the rules name one pair of ports, so one left behind by a killed
 * test touches nothing else.
 */
export async function dropBetween (portA: number, portB: number): Promise<() => Promise<void>> {
  const rules = [[portA, portB], [portB, portA]].map(([from, to]) => ['INPUT', '-i', 'lo', '-p', 'tcp', '--sport', String(from), '--dport', String(to), '-j', 'DROP'])
  const added: string[][] = []
  const remove = async (): Promise<void> => {
    for (const rule of added.splice(0)) await run('iptables', ['-w', '-D', ...rule])
  }
  try {
    for (const rule of rules) {
      await run('iptables', ['-w', '-I', ...rule])
      added.push(rule)
    }
  } catch (err) {
    await remove()
    throw err
  }
  return remove
}
