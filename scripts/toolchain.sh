# shellcheck shell=bash
# Sourced by ./sy and .ci/run. Puts a suitable Node (>= 22.12) and the pinned pnpm on PATH.
# The only place either is fetched from is the npm registry (packages node@24 and pnpm), into
# ./.tools, never system-wide.

sy_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null
}

# Installs the listed packages into .tools in one npm call (npm prunes what a call does not name).
# `--prefix` also moves npm's global npmrc under .tools, so the machine's own (the registry, a
# proxy, the proxy's CA in `cafile`) is named with `--globalconfig`: without it, behind a
# TLS-inspecting proxy every request failed its certificate three times, and the install finished
# only from npm's cache, ~70 s a package (a clean-environment CI run, 2026-12-05).
sy_tools_install() {
  local tools="$1" globalconfig config=(); shift
  mkdir -p "$tools"
  printf '{"name":"switchyard-tools","private":true}\n' >"$tools/package.json"
  globalconfig="$(sy_system_npm_config globalconfig)"
  if [ -n "$globalconfig" ] && [ -r "$globalconfig" ]; then config=(--globalconfig "$globalconfig"); fi
  npm install --silent --no-audit --no-fund "${config[@]}" --prefix "$tools" "$@" >&2
  hash -r
}

# A setting of the npm the machine came with (the PATH sy_toolchain was given), empty when unset:
# npm run by the Node in .tools would look for its global npmrc under .tools and not find the
# system's.
sy_system_npm_config() {
  local value
  value="$(PATH="${SY_GIVEN_PATH:-$PATH}" npm config get "$1" 2>/dev/null || true)"
  case "$value" in null | undefined) value="" ;; esac
  printf '%s' "$value"
}

sy_toolchain() {
  local root="$1" tools="$1/.tools" pnpm_version
  # The PATH as given, for sy_system_npm_config: npm finds its global npmrc beside the Node that runs it.
  SY_GIVEN_PATH="$PATH"
  export PATH="$tools/node_modules/.bin:$PATH"
  pnpm_version="$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$root/package.json")"
  local need=()
  if ! sy_node_ok; then
    echo "switchyard: Node $(node --version 2>/dev/null || echo '(none)') is older than 22.12; fetching node@24 from the npm registry into .tools/" >&2
    need+=("node@24")
  elif [ -x "$tools/node_modules/.bin/node" ]; then
    need+=("node@24") # keep the one fetched earlier
  fi
  if [ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]; then
    sy_tools_install "$tools" "${need[@]}" "pnpm@$pnpm_version"
  elif [ ${#need[@]} -gt 0 ] && ! sy_node_ok; then
    sy_tools_install "$tools" "${need[@]}" "pnpm@$pnpm_version"
  fi
  sy_node_ok || { echo "switchyard: could not provide Node >= 22.12 (looked in .tools/ and on PATH)" >&2; exit 1; }
  export COREPACK_ENABLE_STRICT=0
}

# pnpm, a Node program, trusts Node's own CAs. Behind a TLS-inspecting proxy npm may be set up with
# the proxy's CA (`cafile`, often in the system npm's global npmrc, which pnpm does not read when
# another Node runs it): the registry then answers npm and refuses pnpm ("self-signed certificate in
# certificate chain"). So pnpm's commands get npm's CA file through NODE_EXTRA_CA_CERTS, unless the
# environment names one already. Called for pnpm only (installs, `./sy <pnpm script>`, CI): the hub
# that `./sy start` runs keeps Node's CAs.
sy_pnpm_ca() {
  [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && return 0
  local cafile
  cafile="$(sy_system_npm_config cafile)"
  if [ -n "$cafile" ] && [ -r "$cafile" ]; then export NODE_EXTRA_CA_CERTS="$cafile"; fi
  return 0
}

# Node 22.12 to 22.17 runs .ts files only with --experimental-strip-types (22.18 and later without).
# The hub's own launcher adds it for `switchyard` commands; every other script the repository runs
# as `node scripts/<name>.ts` (`./sy new-connector`, `./sy generate`, pnpm's scripts) gets it
# through NODE_OPTIONS, so that a Node this toolchain accepts runs all of them.
sy_node_ts_options() {
  node -e 'process.exit(process.features.typescript ? 0 : 1)' 2>/dev/null && return 0
  export NODE_OPTIONS="--experimental-strip-types --disable-warning=ExperimentalWarning${NODE_OPTIONS:+ $NODE_OPTIONS}"
}

sy_install() {
  local root="$1" stamp="$1/node_modules/.sy-lock-stamp"
  # Install only when the lockfile changed since the last install.
  if [ ! -f "$stamp" ] || ! cmp -s "$root/pnpm-lock.yaml" "$stamp"; then
    (cd "$root" && sy_pnpm_ca && pnpm install --frozen-lockfile --reporter=append-only >&2)
    cp "$root/pnpm-lock.yaml" "$stamp"
  fi
}
