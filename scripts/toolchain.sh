# shellcheck shell=bash
# Sourced by ./sy and .ci/run. Puts a suitable Node (>= 22.12) and the pinned pnpm on PATH.
# The only place either is fetched from is the npm registry (packages node@24 and pnpm), into
# ./.tools, never system-wide.

sy_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null
}

# Installs the listed packages into .tools in one npm call (npm prunes what a call does not name).
sy_tools_install() {
  local tools="$1"; shift
  mkdir -p "$tools"
  printf '{"name":"switchyard-tools","private":true}\n' >"$tools/package.json"
  npm install --silent --no-audit --no-fund --prefix "$tools" "$@" >&2
  hash -r
}

sy_toolchain() {
  local root="$1" tools="$1/.tools" pnpm_version
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

sy_install() {
  local root="$1" stamp="$1/node_modules/.sy-lock-stamp"
  # Install only when the lockfile changed since the last install.
  if [ ! -f "$stamp" ] || ! cmp -s "$root/pnpm-lock.yaml" "$stamp"; then
    (cd "$root" && pnpm install --frozen-lockfile --reporter=append-only >&2)
    cp "$root/pnpm-lock.yaml" "$stamp"
  fi
}
