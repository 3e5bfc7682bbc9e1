# Shared by bin/demo, bin/test and bin/lock: find Python >= 3.12, make .venv, install the locked
# dependencies into it. Sourced, not run. Reinstalls only when the lock file changed.

find_python() {
  for candidate in python3.13 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Harry's Club Presale needs Python 3.12 or newer (found: $(python3 --version 2>&1))." >&2
  echo "Install it (e.g. 'pyenv install 3.12' or your package manager) and run this again." >&2
  return 1
}

ensure_venv() {  # $1: "" for what the product needs (requirements/base.txt), "dev" to test too
  # Installs exactly the hashed lock file (bin/lock writes it from pyproject.toml): every
  # package, transitive ones included, at its pinned version with its hash checked. The project
  # itself is not installed; it runs from this folder.
  local extra="${1:-}"
  if [ ! -x .venv/bin/python ]; then
    local python; python=$(find_python)
    "$python" -m venv .venv
  fi
  local lock="requirements/${extra:-base}.txt"
  local stamp=".venv/.installed-${extra:-base}"
  local digest; digest=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r "$lock"
    echo "$digest" > "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

ensure_browser() {
  # Browser tests drive Debian's Chromium; where it is missing, install it (root with apt, as in
  # CI) or fall back to Playwright's own download (needs the internet). Never skip silently.
  if [ -n "${PRESALE_CHROMIUM:-}" ] && [ -x "${PRESALE_CHROMIUM}" ]; then return 0; fi
  if [ -x /usr/bin/chromium ]; then export PRESALE_CHROMIUM=/usr/bin/chromium; return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium with apt-get for the browser tests…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    export PRESALE_CHROMIUM=/usr/bin/chromium; return 0
  fi
  if .venv/bin/python -m playwright install chromium; then return 0; fi
  echo "No browser for the browser tests. Install Chromium ('sudo apt-get install chromium')" >&2
  echo "or let Playwright fetch one ('.venv/bin/python -m playwright install chromium')." >&2
  return 1
}

ensure_axe() {
  # axe-core (the accessibility checker the browser tests inject) comes from npm, pinned with
  # hashes in package-lock.json. Reinstalls only when the lock file changed.
  local stamp="node_modules/.installed-lock"
  local digest; digest=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f node_modules/axe-core/axe.min.js ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "The browser tests need axe-core from npm, and npm is missing: install Node.js and npm" >&2
    echo "('apt-get install nodejs npm'), then run this again." >&2
    return 1
  fi
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$digest" > "$stamp"
}
