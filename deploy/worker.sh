#!/bin/sh
# The compose stack's worker: the bundle key the init service keeps in $KEYS_DIR (a key is
# a value, not a file, in the settings), then `stream-app worker`.
set -eu
KEYS_DIR="${KEYS_DIR:-/keys}"
STREAM_BUNDLE_SIGNING_KEY=$(cat "$KEYS_DIR/bundle-signing.key")
export STREAM_BUNDLE_SIGNING_KEY
exec stream-app worker -l info
