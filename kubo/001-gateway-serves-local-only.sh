#!/bin/sh
# Run by the Kubo image before its daemon starts (/container-init.d). Heimdall
# reads file bytes through this node's gateway (IPFS_GATEWAY_URL), which stays
# on the compose network: it must answer from this node's own blocks and never
# fetch from the network on a visitor's behalf.
set -e
ipfs config --json Gateway.NoFetch true
