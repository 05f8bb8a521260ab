import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { base58btc } from 'multiformats/bases/base58'
import { identity } from 'multiformats/hashes/identity'

/** libp2p's KeyType.Ed25519 in its PublicKey/PrivateKey protobufs. */
const ED25519 = 1
const SEED_BYTES = 32
const PUBLIC_BYTES = 32
/** `08 01 12 40 <seed> <public>`: a libp2p PrivateKey protobuf, as Kubo's `ipfs key import --format=libp2p-protobuf-cleartext` reads it. */
const PRIVATE_PROTOBUF_BYTES = 4 + SEED_BYTES + PUBLIC_BYTES

export interface PeerIdentity {
  /** The base58btc peer id (`12D3KooW…`): the identity multihash of the public key's protobuf. */
  peerId: string
  /** The libp2p PrivateKey protobuf: the embedded node's libp2p identity when it is on the network. */
  privateKey: Uint8Array
}

const protobuf = (data: Uint8Array): Uint8Array => Uint8Array.from([0x08, ED25519, 0x12, data.byteLength, ...data])

/** The peer id of an Ed25519 public key, as libp2p and Kubo derive it (keys this small are inlined, not hashed). */
export function peerIdOf (publicKey: Uint8Array): string {
  return base58btc.baseEncode(identity.digest(protobuf(publicKey)).bytes)
}

function fromProtobuf (bytes: Uint8Array): PeerIdentity {
  if (bytes.byteLength !== PRIVATE_PROTOBUF_BYTES || bytes[0] !== 0x08 || bytes[1] !== ED25519 || bytes[2] !== 0x12 || bytes[3] !== SEED_BYTES + PUBLIC_BYTES) {
    throw new Error('not an Ed25519 libp2p private key')
  }
  const seed = bytes.subarray(4, 4 + SEED_BYTES)
  const stored = bytes.subarray(4 + SEED_BYTES)
  // The public half is derived again from the seed: a file whose halves disagree is refused, not trusted.
  const derived = publicKeyOf(seed)
  if (!Buffer.from(derived).equals(Buffer.from(stored))) throw new Error('the key file\'s public key does not match its private key')
  return { peerId: peerIdOf(derived), privateKey: Uint8Array.from(bytes) }
}

function publicKeyOf (seed: Uint8Array): Uint8Array {
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(seed).toString('base64url'), x: '' }, format: 'jwk' })
  return Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x ?? '', 'base64url')
}

/**
 * This node's peer identity: an Ed25519 key kept in DATA_DIR/peer-key (mode
 * 0600), made at first start. It is the same across restarts whether or not
 * the node is on the network, so the `delegates` the Pinning Service API
 * answers (multiaddrs ending in /p2p/<peer id>) never change under a client.
 */
export async function resolvePeerIdentity (dataDir: string): Promise<PeerIdentity> {
  const file = join(dataDir, 'peer-key')
  try {
    const identity = fromProtobuf(await readFile(file))
    await chmod(file, 0o600)
    return identity
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the peer key ${file}`, { cause: err })
  }
  const { privateKey } = generateKeyPairSync('ed25519')
  const jwk = privateKey.export({ format: 'jwk' })
  const bytes = Uint8Array.from([0x08, ED25519, 0x12, SEED_BYTES + PUBLIC_BYTES, ...Buffer.from(jwk.d ?? '', 'base64url'), ...Buffer.from(jwk.x ?? '', 'base64url')])
  // 'wx': two processes starting on one DATA_DIR cannot both write a key; the loser reads the winner's.
  try {
    await writeFile(file, bytes, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return fromProtobuf(await readFile(file))
    throw err
  }
  return fromProtobuf(bytes)
}

/** The default swarm port (`IPFS_LISTEN`'s default), named in our delegates while the node is off the network. */
const SWARM_PORT = 4001

/**
 * A multiaddr for the Pinning Service API's `delegates`: the public host on
 * the swarm port, ending in /p2p/<peer id>. The spec wants at least one, and
 * Kubo's client refuses a whole answer if one does not parse. (See
 * delegates.ts for what is named when the node is on the network, or Kubo.)
 */
export function delegateAddresses (publicUrl: string, peerId: string, port = SWARM_PORT): string[] {
  const host = new URL(publicUrl).hostname.replace(/^\[|\]$/g, '')
  const protocol = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns'
  return [`/${protocol}/${host}/tcp/${port}/p2p/${peerId}`]
}
