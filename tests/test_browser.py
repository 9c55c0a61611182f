"""The lessons in a real browser: JupyterLab + headless system Chromium (tests/browser/, see its README.md).

Runs Run All on the widget lessons (00_data and 05_evaluation: `tests/browser/browser_test.py`'s default set), checks that
no cell fails and clicks their widgets. Slow (several minutes on two cores), so it runs only with SER_KIT_BROWSER_TEST=1;
it skips where Chromium, playwright or JupyterLab are missing. Other lessons: `LESSONS=all tests/browser/run_browser_test.sh`.
"""
import importlib.util, os, shutil, subprocess, sys
from pathlib import Path
import pytest

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
pytestmark = pytest.mark.skipif(not os.environ.get('SER_KIT_BROWSER_TEST'),
                                reason='slow: set SER_KIT_BROWSER_TEST=1 to run the lessons in headless Chromium')


def test_widget_lessons_in_browser():
    "Run All on the widget lessons in JupyterLab in Chromium: no error output, every widget answers a click."
    missing = [what for what, ok in [(CHROMIUM, Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
                                     ('playwright', importlib.util.find_spec('playwright')),
                                     ('jupyterlab', importlib.util.find_spec('jupyterlab'))] if not ok]
    if missing:
        pytest.skip(f"browser test needs /usr/bin/chromium, playwright and jupyterlab (missing: {', '.join(missing)}): "
                    "tests/browser/run_browser_test.sh --install")
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}  # the test picks the kernels' settings itself
    p = subprocess.run([sys.executable, str(HERE / 'browser' / 'browser_test.py')], env=env, capture_output=True,
                       text=True, timeout=float(os.environ.get('SER_KIT_BROWSER_TEST_TIMEOUT', 1800)))
    out = (p.stdout + p.stderr)[-6000:]
    assert p.returncode != 2, f'the browser test could not start:\n{out}'
    assert p.returncode == 0, f'the browser test failed:\n{out}'
