#!/bin/sh
# The compose stack's init service: keys, topics, models, a production version; then exit 0.
#
#   1. keys, made on the first run only: the registry's Ed25519 pair (the private half
#      stays in $SIGNING_DIR, this service's alone; the public half is copied to
#      $KEYS_DIR, which the worker mounts read-only) and the bundle HMAC key in $KEYS_DIR
#      (STREAM_BUNDLE_SIGNING_KEY, when set, is used instead and replaces it);
#   2. the app's topics that the broker lacks (it creates none on demand);
#   3. bundles: every bundle directory in $IMPORT_DIR (./models) of the model
#      STREAM_MODEL_NAME, else the two demo versions (1.0.0, and 1.1.0 as challenger),
#      trained here; each registered (into the Kafka bundle store) unless it is already;
#   4. unless the model has a production version: the first demo version, or the newest
#      imported one, promoted through the pre-deploy gate on $VALIDATION.
#
# Every step is skipped when its result is there, so a second `docker compose up` (or a
# rerun after a failure) does only what is missing. With arguments it runs those as a
# stream-app command with the stack's keys instead (after step 1):
#   docker compose run --rm init registry promote conversion 1.1.0 --expected-current 1.0.0 ...
set -eu

KEYS_DIR="${KEYS_DIR:-/keys}"
SIGNING_DIR="${SIGNING_DIR:-/signing}"
IMPORT_DIR="${IMPORT_DIR:-/import}"
WORK_DIR="${WORK_DIR:-/tmp/stream-app-init}"
VALIDATION="${VALIDATION:-demo:2026}"
MODEL="${STREAM_MODEL_NAME:-conversion}"

say() { echo "init: $*"; }

make_keys() {
    if [ ! -f "$SIGNING_DIR/registry-signing.pem" ]; then
        rm -rf "$WORK_DIR/keygen"
        stream-app registry keygen "$WORK_DIR/keygen" >/dev/null
        # The private half last: its presence says the pair is complete.
        mv -f "$WORK_DIR/keygen/registry-verify.pem" "$SIGNING_DIR/registry-verify.pem"
        mv -f "$WORK_DIR/keygen/registry-signing.pem" "$SIGNING_DIR/registry-signing.pem"
        say "made the registry key pair"
    fi
    cp "$SIGNING_DIR/registry-verify.pem" "$KEYS_DIR/registry-verify.pem"
    if [ -n "${STREAM_BUNDLE_SIGNING_KEY:-}" ]; then
        (umask 077 && printf '%s\n' "$STREAM_BUNDLE_SIGNING_KEY" >"$KEYS_DIR/bundle-signing.key.new")
        mv -f "$KEYS_DIR/bundle-signing.key.new" "$KEYS_DIR/bundle-signing.key"
    elif [ ! -s "$KEYS_DIR/bundle-signing.key" ]; then
        (umask 077 && python -c 'import base64, secrets
print(base64.b64encode(secrets.token_bytes(32)).decode())' >"$KEYS_DIR/bundle-signing.key.new")
        mv -f "$KEYS_DIR/bundle-signing.key.new" "$KEYS_DIR/bundle-signing.key"
        say "made the bundle key"
    fi
    STREAM_BUNDLE_SIGNING_KEY=$(cat "$KEYS_DIR/bundle-signing.key")
    STREAM_REGISTRY_SIGNING_KEY="$SIGNING_DIR/registry-signing.pem"
    export STREAM_BUNDLE_SIGNING_KEY STREAM_REGISTRY_SIGNING_KEY
}

# The registry's view of $MODEL as JSON: production and versions (none when unknown).
model_json() {
    if stream-app registry list --json | python -c 'import json, sys
sys.exit(sys.argv[1] not in {m["name"] for m in json.load(sys.stdin)})' "$MODEL"; then
        stream-app registry list "$MODEL" --json
    else
        echo '{"production": null, "versions": []}'
    fi
}

is_registered() {
    model_json | python -c 'import json, sys
sys.exit(sys.argv[1] not in {v["version"] for v in json.load(sys.stdin)["versions"]})' "$1"
}

production() {
    model_json | python -c 'import json, sys
print(json.load(sys.stdin)["production"] or "none")'
}

# demo_version VERSION SEED [challenger]: train and register it unless it is registered.
demo_version() {
    if is_registered "$1"; then
        say "$MODEL $1 is registered already"
        return
    fi
    out="$WORK_DIR/bundles/$MODEL-$1"
    stream-app bundle train-demo --out "$out" --name "$MODEL" --version "$1" --seed "$2" --overwrite >/dev/null
    if [ "${3:-}" = challenger ]; then
        stream-app registry register "$out" --challenger
    else
        stream-app registry register "$out"
    fi
}

# import_bundles: register each bundle of $MODEL in $IMPORT_DIR; print the newest version.
import_bundles() {
    for dir in "$IMPORT_DIR"/*/; do
        [ -f "$dir/metadata.json" ] || continue
        meta=$(python -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(m["name"], m["version"])' "$dir/metadata.json")
        name=${meta% *}
        version=${meta#* }
        if [ "$name" != "$MODEL" ]; then
            say "$dir holds model $name, not $MODEL: skipped" >&2
        elif is_registered "$version"; then
            say "$MODEL $version is registered already" >&2
        else
            stream-app registry register "$dir" >&2
        fi
    done
    model_json | python -c 'import json, sys
versions = json.load(sys.stdin)["versions"]
print(versions[-1]["version"] if versions else "")'
}

# promote_first VERSION: through the gate, unless the model has a production version.
promote_first() {
    current=$(production)
    if [ "$current" != none ]; then
        say "$MODEL production is $current already: left as it is"
        return
    fi
    stream-app registry promote "$MODEL" "$1" --expected-current none --validation "$VALIDATION"
}

mkdir -p "$KEYS_DIR" "$SIGNING_DIR" "$WORK_DIR"
make_keys
if [ $# -gt 0 ]; then
    exec stream-app "$@"
fi
stream-app kafka topics
if ls "$IMPORT_DIR"/*/metadata.json >/dev/null 2>&1; then
    say "registering the bundles in $IMPORT_DIR"
    newest=$(import_bundles)
    if [ -z "$newest" ]; then
        say "no bundle of $MODEL in $IMPORT_DIR"
        exit 1
    fi
    promote_first "$newest"
else
    say "no bundles in $IMPORT_DIR: the demo versions"
    demo_version 1.0.0 11
    demo_version 1.1.0 12 challenger
    promote_first 1.0.0
fi
say "done: $MODEL production is $(production)"
