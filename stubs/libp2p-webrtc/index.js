// Stand-in for @libp2p/webrtc (see README.md beside this file): the same named
// exports, each throwing if called. Heimdall's libp2p node dials TCP only.
function notAvailable (name) {
  return () => {
    throw new Error(`@libp2p/webrtc ${name}() is not available in Heimdall: the package is replaced by stubs/libp2p-webrtc (see its README)`)
  }
}

export const webRTC = notAvailable('webRTC')
export const webRTCDirect = notAvailable('webRTCDirect')
