// Stand-in for @helia/libp2p (see README.md beside this file): the same named
// exports, each throwing if called. Heimdall builds its own libp2p node
// (src/ipfs/network/libp2p-node.ts); nothing it runs calls these.
function notAvailable (name) {
  return () => {
    throw new Error(`@helia/libp2p ${name}() is not available in Heimdall: the package is replaced by stubs/helia-libp2p (see its README)`)
  }
}

export const libp2pDefaults = notAvailable('libp2pDefaults')
export const withLibp2p = notAvailable('withLibp2p')
export const withLibp2pLight = notAvailable('withLibp2pLight')
