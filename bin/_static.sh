# Sourced by bin/run and bin/test: install the page's pinned front-end libraries (package.json,
# package-lock.json) into node_modules/, which Django serves as static files. Reinstalls only
# when the lockfile changed since the last install.

ensure_static_packages() {
  local stamp=node_modules/.package-lock.sha256 wanted
  wanted="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${wanted}" ]]; then
    if ! command -v npm >/dev/null; then
      echo "npm not found: install Node.js (20 or newer) for the page's chart library" >&2
      return 1
    fi
    echo "Installing front-end packages (npm ci)" >&2
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "${wanted}" > "${stamp}"
  fi
}
