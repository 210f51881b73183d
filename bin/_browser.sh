# Sourced by bin/test: the browser tests (tests/browser) drive this machine's Chromium through
# Playwright, which must not download browsers of its own. Installs Debian's package when
# /usr/bin/chromium is missing; apt's package lists are refreshed only if that first fails.

ensure_chromium() {
  [[ -x /usr/bin/chromium ]] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "Chromium not found at /usr/bin/chromium and no apt-get to install it:" \
      "install Chromium there for the browser tests" >&2
    return 1
  fi
  local as_root=(env DEBIAN_FRONTEND=noninteractive)
  if [[ "$(id -u)" != 0 ]]; then
    if ! command -v sudo >/dev/null; then
      echo "Chromium not found at /usr/bin/chromium and no sudo to install it: run" \
        "'apt-get install -y --no-install-recommends chromium' as root" >&2
      return 1
    fi
    as_root=(sudo "${as_root[@]}")
  fi
  echo "Installing Chromium for the browser tests (apt-get install chromium)" >&2
  local install=(apt-get install -y -qq chromium)  # with its fonts: screenshots show text
  if ! "${as_root[@]}" "${install[@]}" >/dev/null; then
    echo "Retrying after apt-get update" >&2
    if ! { "${as_root[@]}" apt-get update -qq >/dev/null \
        && "${as_root[@]}" "${install[@]}" >/dev/null; }; then
      echo "Could not install Chromium with apt-get; the browser tests need /usr/bin/chromium" >&2
      return 1
    fi
  fi
  if [[ ! -x /usr/bin/chromium ]]; then
    echo "apt-get installed chromium, yet /usr/bin/chromium is missing" >&2
    return 1
  fi
}
