# Sourced by bin/run and bin/test: ensure .venv exists and holds the given requirements file.
# Reinstalls only when the requirements files changed since the last install.

ensure_venv() {
  local requirements="$1" stamp="$2"
  if [[ ! -x .venv/bin/python ]]; then
    local python
    python="$(command -v python3.11 || command -v python3)"
    echo "Creating .venv with ${python}" >&2
    "${python}" -m venv .venv
  fi
  local files=(requirements.txt) wanted
  [[ "${requirements}" == requirements.txt ]] || files+=("${requirements}")
  wanted="$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${wanted}" ]]; then
    echo "Installing ${requirements}" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "${requirements}"
    echo "${wanted}" > "${stamp}"
  fi
}
