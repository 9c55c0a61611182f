#!/usr/bin/env bash
# Browser test of the lessons: JupyterLab (headless, 127.0.0.1, random port and token) + system Chromium via Playwright.
# Usage: tests/browser/run_browser_test.sh [--install]
#   --install   first apt-get install chromium (Debian package) and pip install playwright (the Python package only:
#               no browser download; the system Chromium is used). Needs root; takes a few minutes.
# Env: LESSONS=00_data,05_evaluation (default: the widget lessons) or LESSONS=all (every nbs/0*.ipynb, slower),
#      SER_KIT_QUICK=1 (default: quick settings, live widgets; 0 = the learner's full settings),
#      SER_KIT_SCREENSHOTS=/tmp/ser_kit_browser (a <lesson>.png per lesson and summary.json), BROWSER_TIMEOUT=600 (per lesson),
#      CHROMIUM=/usr/bin/chromium, KEEP=1 (keep the temporary copy of nbs/ and the JupyterLab log).
# Exit: 0 pass, 1 a check failed, 2 could not start (no Chromium / Playwright / JupyterLab). Never writes into the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--install" ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  python3 -m pip install -q playwright
fi
unset IN_TEST  # the kernels get their settings from the test (IN_TEST would turn every widget into static output)
exec python3 tests/browser/browser_test.py
