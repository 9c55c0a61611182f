"""Run the lessons (nbs/0*.ipynb) in a real JupyterLab in headless Chromium, the way a learner does, and check what they see.

For every lesson: Run > Run All Cells, wait until the kernel is idle, save the (temporary) notebook and check that every
code cell ran and that no cell has an error output; then click every widget the lesson shows and check its answer:

- corpus browser (`corpus_browser`): a dropdown filter narrows the clip list; picking a clip shows an `<audio>` player
  with a duration and a waveform;
- clip explorer (`clip_explorer`): another emotion redraws the figure (a different image) and gives a player;
- mistakes browser (`mistakes_browser`): clicking a confusion-matrix cell lists its clips with players;
- upload widget (`upload_widget`): uploading a WAV shows the player, the predicted emotions and the probability bars;
- recorder (`recorder_widget`): the record button records Chromium's fake microphone and shows the prediction.

Each lesson's Run All time is printed and written with the results to `summary.json`, and a screenshot per lesson
(`<lesson>.png`: the first error, else the first widget after the clicks, else the last figure) goes to $SER_KIT_SCREENSHOTS.

Run through run_browser_test.sh (see README.md here). Exit code 0 = pass, 1 = a check failed, 2 = could not start.
Environment: LESSONS (comma-separated names such as `00_data,05_evaluation`, or `all`; default the widget lessons),
SER_KIT_QUICK (1, default: quick settings with live widgets; 0: the learner's full settings), FULL_LESSONS (lessons run
with full settings all the same; default 01_features), SER_KIT_SCREENSHOTS
(default /tmp/ser_kit_browser), BROWSER_TIMEOUT (seconds per lesson's Run All, default 600), CHROMIUM (default
/usr/bin/chromium), SER_KIT_CACHE (the kernels' cache; default a fresh temporary one), KEEP=1 (keep the temporary folder),
DEBUG_IMG=1 (save the checked widget figures' data URIs as figure_*.txt beside the screenshots).
Nothing is written into the repository: the lessons run in a temporary copy of nbs/ (with benchmarks/, tests/fixtures/
and settings.ini beside it, which the lessons read).
"""
__test__ = False  # a script, not a pytest module: tests/test_browser.py runs it
import json, math, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request, wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get('SER_KIT_SCREENSHOTS', '/tmp/ser_kit_browser'))
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
TIMEOUT = float(os.environ.get('BROWSER_TIMEOUT', 600))
QUICK = os.environ.get('SER_KIT_QUICK', '1') not in ('0', '', 'no', 'false')
# Lessons run with full settings even in quick mode: 01_features under IN_TEST deletes its throwaway cache, with the clips
# the clip explorer plays, in its last cell (and its full settings are as fast: about a minute)
FULL_LESSONS = [n.strip() for n in os.environ.get('FULL_LESSONS', '01_features').split(',') if n.strip()]
WIDGET_LESSONS = '00_data,05_evaluation'  # the CI set: the lessons whose widgets matter most, in about 3 minutes
FLAGS = ['--no-sandbox',  # headless=True adds --headless; Playwright gives every launch a fresh temporary --user-data-dir
         '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--mute-audio',
         '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']  # the recorder gets a fake microphone
# The widgets a lesson shows, found by the calls that show them: a code line calling the function that is not its `def`,
# an import, or an assignment (`_ui = corpus_browser(...)` makes a widget without showing it), nor `static=True`.
WIDGETS = ('corpus_browser', 'clip_explorer', 'mistakes_browser', 'upload_widget', 'recorder_widget')
# Quick mode: the kernel gets IN_TEST=1 (the lessons' quick settings) and SER_KIT_WIDGETS=1; until the lessons honour
# SER_KIT_WIDGETS, this start-up file makes `ser_kit.data.interactive_frontend` ignore IN_TEST (a real front-end is there).
LIVE_WIDGETS_PY = '''\
def _ser_kit_live_widgets():
    "Keep widgets live in a quick-settings kernel: interactive_frontend() ignores IN_TEST here."
    import ser_kit.data as d
    if d.interactive_frontend(): return            # the lessons honour SER_KIT_WIDGETS themselves
    def interactive_frontend() -> bool:
        "True in a live Jupyter kernel (the browser test's quick kernel: IN_TEST only picks quick settings)."
        from IPython import get_ipython
        ip = get_ipython()
        return ip is not None and hasattr(ip, 'kernel')
    d.interactive_frontend = interactive_frontend
_ser_kit_live_widgets(); del _ser_kit_live_widgets
'''


def log(*a): print('[browser-test]', *a, flush=True)


def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def lab_settings(d: Path):
    "JupyterLab user settings: every cell stays in the DOM (no virtual windowing), no news pop-up."
    for ext, body in {'@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
                      '@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false', 'checkForUpdates': False}}.items():
        f = d / ext; f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(body))


KERNEL_NAMES = {'python3': 'python3', 'ser-kit-quick': 'python3 (ser_kit quick)'}


def kernelspecs(work: Path):
    "Two kernels: `python3` (the lessons' own: live, full settings) and `ser-kit-quick` (quick settings, live widgets)."
    (work / 'live_widgets.py').write_text(LIVE_WIDGETS_PY)
    argv = [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}']
    specs = {'python3': dict(argv=argv, display_name='python3', language='python'),
             'ser-kit-quick': dict(argv=argv + [f'--IPKernelApp.exec_files={work / "live_widgets.py"}'],
                                   display_name=KERNEL_NAMES['ser-kit-quick'], language='python',
                                   env={'IN_TEST': '1', 'SER_KIT_WIDGETS': '1'})}
    for name, spec in specs.items():
        d = work / 'jupyter' / 'kernels' / name; d.mkdir(parents=True, exist_ok=True)
        (d / 'kernel.json').write_text(json.dumps(spec))


def start_lab(work: Path, port: int, token: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'SER_KIT_DATA', 'SER_KIT_WIDGETS')}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(work / 'settings'), JUPYTERLAB_WORKSPACES_DIR=str(work / 'workspaces'),
               JUPYTER_RUNTIME_DIR=str(work / 'runtime'), JUPYTER_PATH=str(work / 'jupyter'),
               JUPYTER_CONFIG_DIR=str(work / 'config'), IPYTHONDIR=str(work / 'ipython'),
               OMP_NUM_THREADS=env.get('OMP_NUM_THREADS', '1'), MPLBACKEND='module://matplotlib_inline.backend_inline')
    env.setdefault('SER_KIT_CACHE', str(work / 'cache'))
    lab_settings(work / 'settings'); kernelspecs(work)
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', f'--port={port}', '--ip=127.0.0.1', f'--ServerApp.token={token}',
           '--ServerApp.password=', f'--ServerApp.root_dir={work / "repo" / "nbs"}', '--LabApp.news_url=None',
           '--ServerApp.port_retries=0']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')  # containers and CI often run as root
    logf = open(work / 'jupyter.log', 'w')
    p = subprocess.Popen(cmd, cwd=work / 'repo' / 'nbs', env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(180):
        try:
            urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status?token={token}', timeout=2); return p
        except Exception:
            if p.poll() is not None: break
            time.sleep(1)
    raise RuntimeError(f'JupyterLab did not start; see {work / "jupyter.log"}:\n' + (work / 'jupyter.log').read_text()[-2000:])


def api(base: str, token: str, path: str, method='GET'):
    req = urllib.request.Request(f'{base}{path}?token={token}', method=method)
    with urllib.request.urlopen(req, timeout=30) as r: body = r.read()
    return json.loads(body) if body else None


def code_cells(nb: dict) -> list[tuple[int, str]]:
    "(index among all cells, source) of each code cell."
    return [(i, ''.join(c['source'])) for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code']


def expected_widgets(nb: dict) -> list[tuple[str, int]]:
    "(widget, index of the cell showing it) for each widget call in the notebook's code cells."
    found = []
    for i, src in code_cells(nb):
        for line in src.splitlines():
            line = re.sub(r'#.*$', '', re.sub(r"'[^']*'|\"[^\"]*\"", "''", line))  # not in strings or comments
            if re.match(r'\s*(def|from|import)\b', line) or 'static=True' in line: continue
            for w in WIDGETS:
                if re.search(rf'(?<![\w.]){w}\(', line) and not re.match(rf'\s*[\w\[\], .]+\s*=\s*{w}\(', line):
                    if (w, i) not in found: found.append((w, i))
    return found


def prepare(work: Path, lessons: list[str]) -> dict[str, str]:
    "Copy nbs/ (and what the lessons read beside it) to work/repo; pick each lesson's kernel. Returns lesson -> kernel."
    shutil.copytree(REPO / 'nbs', work / 'repo' / 'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_docs', '_proc'))
    for extra in ('benchmarks', 'tests/fixtures'):
        if (REPO / extra).exists(): shutil.copytree(REPO / extra, work / 'repo' / extra, ignore=shutil.ignore_patterns('__pycache__'))
    for f in ('settings.ini', 'pyproject.toml'):
        if (REPO / f).exists(): shutil.copy(REPO / f, work / 'repo' / f)
    kernels = {}
    for name in lessons:
        f = work / 'repo' / 'nbs' / f'{name}.ipynb'
        try: nb = json.loads(f.read_text())
        except Exception as e: kernels[name] = f'unreadable: {type(e).__name__}: {e}'; continue
        # A lesson that defines interactive_frontend itself (00_data) has no quick settings: it runs live as it is.
        own = any('def interactive_frontend' in src for _, src in code_cells(nb))
        kernels[name] = 'ser-kit-quick' if QUICK and not own and name not in FULL_LESSONS else 'python3'
        nb['metadata']['kernelspec'] = dict(name=kernels[name], display_name=KERNEL_NAMES[kernels[name]], language='python')
        f.write_text(json.dumps(nb, indent=1))
    return kernels


def write_test_wav(path: Path, seconds=2.0, sr=16000):
    "A voiced-sounding test clip (a 140 Hz tone with harmonics and a vibrato) for the upload widget and the fake microphone."
    n = int(seconds * sr); frames = bytearray()
    for i in range(n):
        t = i / sr; f0 = 140 * (1 + 0.05 * math.sin(2 * math.pi * 3 * t))
        x = sum(math.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 6)) * 0.2 * min(1, t * 10, (seconds - t) * 10)
        frames += int(max(-1, min(1, x)) * 32767).to_bytes(2, 'little', signed=True)
    with wave.open(str(path), 'wb') as w: w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr); w.writeframes(bytes(frames))


# ---------------------------------------------------------------- widget checks: each returns a list of problems
AUDIO_DURATION_JS = '''el => new Promise(r => {
  if (el.readyState >= 1 && isFinite(el.duration)) return r(el.duration);
  el.addEventListener('loadedmetadata', () => r(el.duration)); el.load(); setTimeout(() => r(el.duration), 15000); })'''


def audio_duration(audio) -> float:
    d = audio.evaluate(AUDIO_DURATION_JS)
    return float(d) if d is not None else float('nan')


def read_saved(f: Path, timeout=30):
    "`saved_outputs` once the file parses: on a busy machine a save can be caught half-written."
    t0 = time.time()
    while True:
        try: return saved_outputs(f)
        except json.JSONDecodeError:
            if time.time() - t0 > timeout: raise
            time.sleep(0.5)


def wait_until(fn, timeout=60, every=0.5):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            v = fn()
            if v: return v
        except Exception: pass
        time.sleep(every)
    return None


def check_audio(box, what: str) -> list[str]:
    a = box.locator('audio')
    if not wait_until(lambda: a.count(), 60): return [f'{what}: no <audio> player appeared']
    d = audio_duration(a.first)
    log(f'  {what}: {a.count()} <audio> player(s), the first {d:.2f} s long')
    return [] if d > 0 and math.isfinite(d) else [f'{what}: the <audio> player has no duration ({d})']


def check_corpus_browser(cell) -> list[str]:
    box = cell.locator('.widget-vbox:has(.widget-select select)').first
    if not wait_until(lambda: box.count(), 30): return ['corpus browser: no live widget (a box with a clip list) in its cell']
    dds, clips = box.locator('.widget-dropdown'), box.locator('.widget-select select option')
    n0 = clips.count(); log(f'  corpus browser: {dds.count()} filters, {n0} clips listed')
    if dds.count() < 2: return [f'corpus browser: expected the emotion/speaker/... filters, found {dds.count()}']
    emo = box.locator('.widget-dropdown:has(label:text-is("emotion")) select')
    if not emo.count(): emo = dds.first.locator('select')
    options = emo.locator('option').all_inner_texts()
    if len(options) < 2: return [f'corpus browser: the emotion filter offers {options}']
    emo.select_option(index=1); chosen = options[1]
    n1 = wait_until(lambda: (lambda n: n if 0 < n < n0 else None)(clips.count()), 30)
    if not n1: return [f'corpus browser: filtering by emotion={chosen} did not narrow the list of {n0} clips (now {clips.count()})']
    labels = clips.all_inner_texts()
    log(f'  corpus browser: emotion={chosen} lists {n1} of {n0} clips, e.g. {labels[0]!r}')
    problems = [] if all(chosen in l for l in labels) else [f'corpus browser: emotion={chosen} lists other clips: {labels[:3]}']
    box.locator('.widget-select select').select_option(index=0)
    problems += check_audio(box, 'corpus browser, a picked clip')
    return problems + check_picture(box.locator('.widget-output'), 'corpus browser, the waveform of the picked clip')


def check_clip_explorer(cell) -> list[str]:
    box = cell.locator('.widget-vbox:has(.widget-dropdown)').first
    if not wait_until(lambda: box.count(), 30): return ['clip explorer: no live widget (a box of dropdowns) in its cell']
    img = box.locator('.widget-output img')
    if not wait_until(lambda: img.count(), 60): return ['clip explorer: no figure before any click']
    before = img.first.get_attribute('src') or ''
    emo = box.locator('.widget-dropdown:has(label:text-is("emotion")) select')
    if not emo.count(): emo = box.locator('.widget-dropdown select').last
    options = emo.locator('option').all_inner_texts()
    if len(options) < 2: return [f'clip explorer: the emotion dropdown offers {options}']
    emo.select_option(index=len(options) - 1)
    changed = wait_until(lambda: img.count() and (img.first.get_attribute('src') or '') != before, 60)
    log(f'  clip explorer: emotion={options[-1]}: the figure was {"redrawn" if changed else "NOT redrawn"}')
    problems = [] if changed else [f'clip explorer: picking emotion={options[-1]} did not redraw the figure']
    return problems + check_audio(box, 'clip explorer') + check_picture(box, 'clip explorer, the redrawn figure')


def check_mistakes_browser(cell) -> list[str]:
    box = cell.locator('.widget-vbox:has(.widget-button)').first
    if not wait_until(lambda: box.count(), 30): return ['mistakes browser: no live widget (a grid of buttons) in its cell']
    buttons = box.locator('.widget-button'); n = buttons.count(); k = round(math.sqrt(n))
    if k * k != n or k < 2: return [f'mistakes browser: {n} buttons do not make a square confusion matrix']
    counts = [int(t) if t.strip().isdigit() else 0 for t in buttons.all_inner_texts()]
    cells = [i for i in range(n) if counts[i] and i // k != i % k] or [i for i in range(n) if counts[i]]
    if not cells: return ['mistakes browser: every cell of the confusion matrix is 0']
    i = max(cells, key=lambda j: counts[j]); buttons.nth(i).click()
    out = box.locator('.widget-output')
    head = wait_until(lambda: (lambda t: t if 'predicted' in t else None)(out.inner_text()), 60)
    if not head: return [f'mistakes browser: clicking the cell ({i // k}, {i % k}) with {counts[i]} clips listed nothing']
    log(f'  mistakes browser: {k}x{k} matrix; clicked the cell ({i // k}, {i % k}): {head.splitlines()[0]!r}')
    m = re.search(r':\s*(\d+) clips', head)
    problems = [] if m and int(m.group(1)) == counts[i] else [f'mistakes browser: the cell says {counts[i]} clips, the list {head.splitlines()[0]!r}']
    want = min(5, counts[i])
    got = wait_until(lambda: (lambda c: c if c >= want else None)(out.locator('audio').count()), 60) or out.locator('audio').count()
    if got != want: problems.append(f'mistakes browser: {got} players for {counts[i]} clips (expected {want})')
    return problems + check_audio(out, 'mistakes browser')


FIGURE_JS = """el => new Promise(r => { const go = () => {
    const c = document.createElement('canvas'); c.width = el.naturalWidth; c.height = el.naturalHeight;
    if (!c.width || !c.height) return r([0, 0, 1]);
    const g = c.getContext('2d'); g.drawImage(el, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
    let clear = 0; for (let i = 3; i < d.length; i += 4) if (d[i] < 255) clear++;
    r([c.width, c.height, clear / (c.width * c.height)]); };
  if (el.complete) go(); else { el.addEventListener('load', go); el.addEventListener('error', go); } })"""


def check_picture(box, what: str, timeout=60) -> list[str]:
    "The last figure in `box` is decoded and fully drawn (matplotlib's inline figures are opaque: white background)."
    img = box.locator('img')
    if not wait_until(lambda: img.count(), timeout): return [f'{what}: no figure']
    w, h, clear = img.last.evaluate(FIGURE_JS)
    log(f'  {what}: a {w}x{h} figure' + (f', {clear:.0%} of it transparent' if clear else ''))
    if os.environ.get('DEBUG_IMG'):  # keep the figure, to look at
        (SHOTS / f'figure_{re.sub(r"[^a-z0-9]+", "_", what.lower()).strip("_")}.txt').write_text(img.last.get_attribute('src') or '')
    if w < 50 or h < 50: return [f'{what}: the figure is {w}x{h} pixels']
    if clear > 0.01: return [f'{what}: the figure is only partly drawn ({clear:.0%} of its pixels are transparent)']
    return []


def check_prediction_output(out, what: str, timeout=120) -> list[str]:
    if not wait_until(lambda: out.locator('img').count() and out.locator('audio').count(), timeout):
        txt = out.inner_text()[:300] if out.count() else ''
        return [f'{what}: no player and probability bars appeared (output: {txt!r})']
    log(f'  {what}: prediction {out.inner_text().strip()[:120]!r}')
    return check_audio(out, what) + check_picture(out, what + ' (probability bars)')


def check_upload_widget(cell, wav: Path) -> list[str]:
    box = cell.locator('.widget-vbox:has(.widget-upload)').first
    if not wait_until(lambda: box.count(), 30): return ['upload widget: no live widget (an upload button) in its cell']
    with box.page.expect_file_chooser(timeout=30_000) as fc:   # the learner clicks the button and picks a file
        box.locator('.widget-upload').first.click()
    fc.value.set_files(str(wav))
    return check_prediction_output(box.locator('.widget-output').first, 'upload widget')


def check_recorder_widget(cell) -> list[str]:
    btn = cell.locator('button.ser-kit-record')
    if not wait_until(lambda: btn.count(), 30): return ['recorder: no record button in its cell']
    btn.first.click()
    msg = cell.locator('[id$="-msg"]').first
    said = wait_until(lambda: (lambda t: t if t and t != 'recording...' else None)(msg.inner_text()), 60)
    log(f'  recorder: {said!r}')
    if said != 'sent to the kernel': return [f'recorder: the record button said {said!r}']
    return check_prediction_output(cell.locator('.widget-output').last, 'recorder')


# ---------------------------------------------------------------- one lesson
ERROR_SEL = ('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"], '
             '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]:has-text("Traceback")')


def saved_outputs(f: Path) -> tuple[int, int, list[str]]:
    "(code cells, code cells that ran, error texts) of the saved notebook."
    nb = json.loads(f.read_text())
    cells = [c for c in nb['cells'] if c['cell_type'] == 'code' and ''.join(c['source']).strip()]  # empty: never run
    errors = []
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            where = f'cell {i} `' + ''.join(c['source']).strip().splitlines()[0][:80] + '`'
            if o.get('output_type') == 'error':
                errors.append(f'{where}: {o.get("ename")}: {" ".join(str(o.get("evalue")).split())}'[:400])
            elif o.get('output_type') == 'stream' and 'Traceback (most recent call last)' in ''.join(o.get('text', '')):
                errors.append(f'{where}: a traceback on {o.get("name")}: ' + ''.join(o['text']).strip().splitlines()[-1][:300])
    return len(cells), sum(c.get('execution_count') is not None for c in cells), errors


def accept_kernel_dialog(page, kernel: str):
    "JupyterLab may ask which kernel to start although the notebook names one: answer with that kernel."
    dlg = page.locator('.jp-Dialog:has-text("Select Kernel")')
    if wait_until(lambda: dlg.count(), 8, 1):
        sel = dlg.locator('select')
        if sel.count(): sel.first.select_option(label=KERNEL_NAMES[kernel])
        dlg.locator('.jp-Dialog-button.jp-mod-accept').click()
        log(f'  answered the "Select Kernel" dialog with {KERNEL_NAMES[kernel]}')


IMAGES_DECODED_JS = "el => [...el.querySelectorAll('img')].every(i => i.complete)"


def shown_hint(w: str, src: str) -> str:
    "Why a widget may not be on screen although its cell ran: the cell's value is its last line."
    last = [l for l in src.splitlines() if l.strip()][-1]
    if w in last or 'display(' in src: return f'{w}: (its cell ran, but the widget did not render in it)'
    return (f'{w}: its cell ends with `{last.strip()}`, so the widget that {w}(...) returns is not the cell\'s value and '
            f'is never shown (make the call the last line, or display() it)')


def run_lesson(ctx, base: str, token: str, work: Path, name: str, wav: Path, kernel: str) -> dict:
    f = work / 'repo' / 'nbs' / f'{name}.ipynb'
    nb = json.loads(f.read_text()); widgets = expected_widgets(nb)
    res = dict(lesson=name, problems=[], widgets=[w for w, _ in widgets])
    page = ctx.new_page()
    page.on('pageerror', lambda e: log('  page error:', str(e)[:200]))
    try:
        # a fresh workspace per lesson: only this notebook is open (no tab of the previous lesson comes back)
        page.goto(f'{base}/lab/workspaces/{name.replace("_", "-")}/tree/{name}.ipynb?reset&token={token}', timeout=120_000)
        panel = page.locator('.jp-NotebookPanel:visible').first
        panel.locator('.jp-Notebook .jp-Cell').first.wait_for(timeout=120_000)
        accept_kernel_dialog(page, kernel)
        panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=180_000)
        time.sleep(2)  # the kernel connection settles
        n_code = panel.locator('.jp-Notebook .jp-CodeCell').count()
        page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
        page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
        t0, idle = time.time(), 0
        time.sleep(3)
        while True:
            prompts = panel.locator('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt').all_inner_texts()
            busy = sum('*' in p for p in prompts)
            idle = idle + 1 if busy == 0 else 0
            if idle >= 2: break
            if time.time() - t0 > TIMEOUT:
                res['problems'].append(f'Run All did not finish in {TIMEOUT:.0f} s'); break
            time.sleep(2)
        res['run_all_s'] = round(time.time() - t0 - 2 * (idle >= 2), 1)
        # Save the temporary copy and read what ran from it (robust against how JupyterLab draws errors)
        mtime = f.stat().st_mtime
        panel.locator('.jp-Notebook').first.click(position=dict(x=5, y=5)); page.keyboard.press('Escape')
        page.keyboard.press('Control+s')
        if not wait_until(lambda: f.stat().st_mtime != mtime, 60): res['problems'].append('could not save the notebook to read its outputs')
        n, ran, errors = read_saved(f)
        res.update(code_cells=n, ran=ran, dom_errors=panel.locator(ERROR_SEL).count())
        log(f'{name}: Run All {res["run_all_s"]:.0f} s, {ran}/{n} code cells ran ({n_code} in the page), '
            f'{len(errors)} error output(s)')
        res['problems'] += [f'error output: {e}' for e in errors]
        if ran < n and not errors: res['problems'].append(f'only {ran} of {n} code cells ran')
        if not errors and not res['problems']:
            cells = panel.locator('.jp-Notebook .jp-Cell')
            for w, i in widgets:
                cell = cells.nth(i); cell.scroll_into_view_if_needed()
                try:
                    found = {'corpus_browser': check_corpus_browser, 'clip_explorer': check_clip_explorer,
                             'mistakes_browser': check_mistakes_browser, 'recorder_widget': check_recorder_widget,
                             'upload_widget': lambda c: check_upload_widget(c, wav)}[w](cell)
                except Exception as e: found = [f'{w}: {type(e).__name__}: {str(e).splitlines()[0][:300]}']
                if any('no live widget' in p for p in found): found.append(shown_hint(w, dict(code_cells(nb))[i]))
                tb = cell.locator(ERROR_SEL)  # a callback that raised shows its traceback in the widget's output
                if tb.count():
                    last = [l for l in tb.first.inner_text().splitlines() if l.strip()][-1:] or ['?']
                    found.append(f'{w}: a click raised an error in the widget: {last[0].strip()[:300]}')
                res['problems'] += found
        # Screenshot: the first error, else the first widget, else the last figure of the lesson
        target = (panel.locator(ERROR_SEL).first if panel.locator(ERROR_SEL).count()
                  else panel.locator('.jp-Notebook .jp-Cell').nth(widgets[0][1]) if widgets
                  else panel.locator('.jp-Notebook .jp-OutputArea-output img').last)
        if target.count(): target.evaluate('el => el.scrollIntoView({block: "start"})')  # at the top of the view
        wait_until(lambda: panel.evaluate(IMAGES_DECODED_JS), 15)  # no half-loaded figure in the picture
        time.sleep(1)
        res['screenshot'] = str(SHOTS / f'{name}.png'); page.screenshot(path=res['screenshot'])
    except Exception as e:
        res['problems'].append(f'{type(e).__name__}: {(str(e).splitlines() or [""])[0][:300]}')
        try: res['screenshot'] = str(SHOTS / f'{name}.png'); page.screenshot(path=res['screenshot'])
        except Exception: pass
    finally:
        page.close()
    return res


def shutdown_kernels(base: str, token: str):
    "Free the memory of the finished lesson's kernel before the next lesson."
    try:
        for s in api(base, token, '/api/sessions'): api(base, token, f'/api/sessions/{s["id"]}', 'DELETE')
    except Exception as e: log('could not shut the kernels down:', e)


def lesson_names(spec: str) -> list[str]:
    every = sorted(p.stem for p in (REPO / 'nbs').glob('0*.ipynb'))
    if spec.strip() in ('all', '*'): return every
    names = [n.strip().removesuffix('.ipynb') for n in spec.split(',') if n.strip()]
    unknown = [n for n in names if n not in every]
    if unknown: raise SystemExit(f'[browser-test] no such lesson: {", ".join(unknown)} (lessons: {", ".join(every)})')
    return names


def main() -> int:
    lessons = lesson_names(os.environ.get('LESSONS') or WIDGET_LESSONS)
    if not Path(CHROMIUM).exists(): log(f'no Chromium at {CHROMIUM}: run with --install, or set CHROMIUM'); return 2
    try: from playwright.sync_api import sync_playwright
    except ImportError: log('the playwright Python package is missing: pip install playwright (no browser download needed)'); return 2
    work = Path(tempfile.mkdtemp(prefix='ser_kit_browser_'))
    SHOTS.mkdir(parents=True, exist_ok=True)
    try: kernels = prepare(work, lessons)
    except OSError as e: log(f'could not copy the lessons to {work}: {e}'); return 2
    wav = work / 'test_clip.wav'; write_test_wav(wav)
    port, token = free_port(), secrets.token_hex(16)
    base, lab, results = f'http://127.0.0.1:{port}', None, []
    log(f'lessons: {", ".join(lessons)}; {"quick settings (IN_TEST=1) with live widgets" if QUICK else "full settings"}; '
        f'screenshots in {SHOTS}')
    try:
        lab = start_lab(work, port, token)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=FLAGS + [f'--use-file-for-fake-audio-capture={wav}'])
            ctx = browser.new_context(viewport={'width': 1400, 'height': 1000})
            ctx.grant_permissions(['microphone'], origin=base)
            for name in lessons:
                if kernels[name].startswith('unreadable'):
                    results.append(dict(lesson=name, problems=[f'the notebook is {kernels[name]}'])); continue
                log(f'{name}: Run All (kernel {kernels[name]})')
                r = run_lesson(ctx, base, token, work, name, wav, kernels[name]); r['kernel'] = kernels[name]
                for p in r['problems']: log(f'  FAIL {name}: {p}')
                results.append(r); shutdown_kernels(base, token)
            browser.close()
    except Exception as e:
        log(f'could not run: {type(e).__name__}: {e}'); return 2
    finally:
        if lab is not None:
            os.killpg(lab.pid, signal.SIGTERM)
            try: lab.wait(20)
            except subprocess.TimeoutExpired: os.killpg(lab.pid, signal.SIGKILL)
        if not os.environ.get('KEEP'): shutil.rmtree(work, ignore_errors=True)
        else: log('kept', work)
    (SHOTS / 'summary.json').write_text(json.dumps(dict(quick=QUICK, results=results), indent=1))
    log('lesson           Run All  cells   result')
    for r in results:
        log(f'{r["lesson"]:<16} {r.get("run_all_s", float("nan")):6.0f} s  {r.get("ran", 0):>3}/{r.get("code_cells", 0):<3}  '
            + ('pass' if not r['problems'] else 'FAIL: ' + '; '.join(r['problems'])[:300]))
    bad = [r['lesson'] for r in results if r['problems']]
    log('PASS' if not bad else f'FAIL: {", ".join(bad)}', f'(screenshots and summary.json in {SHOTS})')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
