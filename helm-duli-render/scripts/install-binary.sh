#!/bin/sh
# helm's install and update hook for the duli-render plugin: makes $HELM_PLUGIN_DIR/bin/duli-render the
# plugin's binary, of the plugin's version. Taken, in order, from:
#   1. the binary already there (a release archive carries it);
#   2. `helm-duli-render` on PATH (installed by `.ci/install`, krew or `cargo install`);
#   3. a release build of this repository, when the plugin directory is the repository's own and cargo is
#      installed (`helm plugin install ./helm-duli-render` from a clone).
# Anything else fails the install with what to do (helm 3.17 and 4 keep the plugin listed: uninstall it first).
set -eu

dir="${HELM_PLUGIN_DIR:?helm sets HELM_PLUGIN_DIR for its hooks}"
bin="$dir/bin/duli-render"
want="$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$dir/plugin.yaml")"

# The binary answers `--version` with "helm-duli-render VERSION".
is_wanted() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null | awk '{print $2}')" = "$want" ]; }

if is_wanted "$bin"; then
    echo "duli-render $want: using $bin"
    exit 0
fi
mkdir -p "$dir/bin"
if found="$(command -v helm-duli-render 2>/dev/null)" && is_wanted "$found"; then
    ln -sf "$found" "$bin"
    echo "duli-render $want: linked $bin -> $found"
    exit 0
fi
workspace="$(cd -P "$dir" && cd .. && pwd -P)"
if [ -f "$workspace/Cargo.toml" ] && [ -d "$workspace/helm-duli-render/src" ] && command -v cargo >/dev/null 2>&1; then
    echo "duli-render $want: building it from $workspace (cargo build --release, a few minutes) ..."
    (cd "$workspace" && cargo build --release --locked -p helm-duli-render >&2)
    cp "$workspace/target/release/helm-duli-render" "$bin.tmp"
    mv -f "$bin.tmp" "$bin"
    if is_wanted "$bin"; then
        echo "duli-render $want: built $bin"
        exit 0
    fi
fi
echo "error: no duli-render $want binary: install the plugins first (.ci/install in a clone of the repository, or kubectl krew install duli) or use the plugin's release archive; then 'helm plugin uninstall duli-render' (helm keeps a plugin whose install hook failed) and 'helm plugin install' again" >&2
exit 1
