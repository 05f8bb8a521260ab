#!/usr/bin/env bash
# Rebuilds the Heimdall image and restarts only the Heimdall service; Kubo,
# PostgreSQL and nginx keep running, and so do their volumes.
set -euo pipefail
cd "$(dirname "$0")"
docker-compose build heimdall
docker-compose up -d --no-deps heimdall
docker-compose ps heimdall
