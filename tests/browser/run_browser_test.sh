#!/usr/bin/env bash
# Browser test of the notebook experience: JupyterLab (headless, 127.0.0.1, random token) + system Chromium via Playwright.
# Usage: tests/browser/run_browser_test.sh [--install]
#   --install   first apt-get install chromium (Debian package) and pip install playwright (the Python package only:
#               no browser download; the system Chromium is used). Needs root; takes a few minutes.
# Env: SER_KIT_SCREENSHOT=/path/shot.png (default /tmp/ser_kit_browser.png), NOTEBOOK=00_data.ipynb, BROWSER_TIMEOUT=600,
#      CHROMIUM=/usr/bin/chromium, KEEP=1 (keep the temporary copy of nbs/ and the JupyterLab log).
# Exit: 0 pass, 1 a check failed, 2 could not start (no Chromium / Playwright / JupyterLab). Never writes into the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--install" ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  python3 -m pip install -q playwright
fi
unset IN_TEST  # the corpus browser renders as a live widget only outside nbdev_test
exec python3 tests/browser/browser_test.py
