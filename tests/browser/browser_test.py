"""Open nbs/00_data.ipynb in a real JupyterLab in headless Chromium, run every cell, and check what a learner sees:
the live corpus browser (ipywidgets: dropdowns and a clip list) and an <audio> player. Saves a screenshot.

Run through run_browser_test.sh (see README.md here). Exit code 0 = pass, 1 = a check failed, 2 = could not start.
Environment: SER_KIT_SCREENSHOT (png path, default /tmp/ser_kit_browser.png), CHROMIUM (default /usr/bin/chromium),
NOTEBOOK (default 00_data.ipynb), BROWSER_TIMEOUT (seconds for Run All, default 600), SER_KIT_CACHE (passed to the kernel).
"""
import json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHOT = Path(os.environ.get('SER_KIT_SCREENSHOT', '/tmp/ser_kit_browser.png'))
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
NOTEBOOK = os.environ.get('NOTEBOOK', '00_data.ipynb')
TIMEOUT = float(os.environ.get('BROWSER_TIMEOUT', 600))
FLAGS = ['--no-sandbox',  # headless=True adds --headless; Playwright gives every launch a fresh temporary profile (user-data-dir)
         '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--mute-audio']


def log(*a): print('[browser-test]', *a, flush=True)


def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def lab_settings(d: Path):
    "JupyterLab user settings: every cell stays in the DOM (no virtual windowing), no news pop-up."
    for ext, body in {'@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
                      '@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false', 'checkForUpdates': False}}.items():
        f = d / ext; f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(body))


def start_lab(work: Path, port: int, token: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'SER_KIT_DATA')}  # live widgets need IN_TEST unset
    env.update(JUPYTERLAB_SETTINGS_DIR=str(work / 'settings'), JUPYTERLAB_WORKSPACES_DIR=str(work / 'workspaces'),
               JUPYTER_RUNTIME_DIR=str(work / 'runtime'), OMP_NUM_THREADS=env.get('OMP_NUM_THREADS', '1'), MPLBACKEND='module://matplotlib_inline.backend_inline')
    env.setdefault('SER_KIT_CACHE', str(work / 'cache'))
    lab_settings(work / 'settings')
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', f'--port={port}', '--ip=127.0.0.1', f'--ServerApp.token={token}',
           '--ServerApp.password=', f'--ServerApp.root_dir={work / "nbs"}', '--ServerApp.disable_check_xsrf=False',
           '--LabApp.news_url=None', '--ServerApp.port_retries=0']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')  # containers and CI often run as root
    logf = open(work / 'jupyter.log', 'w')
    p = subprocess.Popen(cmd, cwd=work / 'nbs', env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(120):
        try:
            urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status?token={token}', timeout=2); return p
        except Exception:
            if p.poll() is not None: break
            time.sleep(1)
    raise RuntimeError(f'JupyterLab did not start; see {work / "jupyter.log"}:\n' + (work / 'jupyter.log').read_text()[-2000:])


def run_all_and_check(url: str, work: Path) -> list[str]:
    from playwright.sync_api import sync_playwright
    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        ctx = browser.new_context(viewport={'width': 1400, 'height': 1000})
        page = ctx.new_page()
        page.on('pageerror', lambda e: log('page error:', str(e)[:200]))
        log('opening', url.split('?')[0])
        page.goto(url, timeout=120_000)
        page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=120_000)
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"], .jp-Toolbar-kernelStatus', timeout=120_000)
        time.sleep(3)  # kernel connection settles
        log('Run > Run All Cells')
        page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
        page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
        t0, n_code = time.time(), page.locator('.jp-CodeCell').count()
        time.sleep(5)
        while True:
            prompts = page.locator('.jp-CodeCell .jp-InputArea-prompt').all_inner_texts()
            busy = sum('*' in p for p in prompts); done = sum(any(ch.isdigit() for ch in p) for p in prompts)
            errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] pre:has-text("Traceback"), .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]').count()
            if errors: problems.append(f'a cell raised an error ({errors} error output(s))'); break
            if busy == 0 and done >= n_code: break
            if time.time() - t0 > TIMEOUT: problems.append(f'Run All did not finish in {TIMEOUT:.0f} s ({done}/{n_code} cells ran)'); break
            time.sleep(2)
        log(f'ran {done}/{n_code} code cells in {time.time() - t0:.0f} s')
        widget = page.locator('.jupyter-widgets.widget-vbox:has(select)').last
        try: widget.wait_for(timeout=30_000)
        except Exception: problems.append('the corpus browser widget (a widget box with a <select>) did not render')
        n_dd = page.locator('.widget-dropdown select').count(); n_sel = page.locator('.widget-select select').count()
        log(f'widgets: {page.locator(".jupyter-widgets").count()} .jupyter-widgets elements, {n_dd} dropdowns, {n_sel} clip list(s)')
        if n_dd < 2: problems.append(f'expected the emotion/speaker/... dropdowns, found {n_dd}')
        if n_sel < 1: problems.append('no clip list (<select> of a Select widget) found')
        audio_before = page.locator('audio').count()
        if n_sel:  # play the learner: pick a clip, the browser shows its waveform and an audio player
            sel = page.locator('.widget-select select').last
            opts = sel.locator('option').all_inner_texts()
            log(f'clip list has {len(opts)} clips; picking the second')
            if len(opts) > 1:
                sel.select_option(index=1)
                try: widget.locator('audio').first.wait_for(state='attached', timeout=60_000)
                except Exception: problems.append('picking a clip in the corpus browser showed no <audio> element')
        n_audio = page.locator('audio').count()
        log(f'<audio> elements: {audio_before} before picking a clip, {n_audio} after')
        if n_audio == 0: problems.append('no <audio> element on the page')
        (widget if widget.count() else page.locator('.jp-Notebook')).scroll_into_view_if_needed()
        time.sleep(1)
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOT))
        log('screenshot saved to', SHOT)
        browser.close()
    return problems


def main() -> int:
    if not Path(CHROMIUM).exists(): log(f'no Chromium at {CHROMIUM}: run with --install, or set CHROMIUM'); return 2
    try: import playwright  # noqa
    except ImportError: log('the playwright Python package is missing: pip install playwright (no browser download needed)'); return 2
    work = Path(tempfile.mkdtemp(prefix='ser_kit_browser_'))
    shutil.copytree(REPO / 'nbs', work / 'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_docs', '_proc'))
    port, token = free_port(), secrets.token_hex(16)
    lab = None
    try:
        lab = start_lab(work, port, token)
        problems = run_all_and_check(f'http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}', work)
    except Exception as e:
        log(f'could not run: {type(e).__name__}: {e}'); return 2
    finally:
        if lab is not None:
            os.killpg(lab.pid, signal.SIGTERM)
            try: lab.wait(20)
            except subprocess.TimeoutExpired: os.killpg(lab.pid, signal.SIGKILL)
        if not os.environ.get('KEEP'): shutil.rmtree(work, ignore_errors=True)
    for p in problems: log('FAIL:', p)
    log('PASS' if not problems else f'{len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
