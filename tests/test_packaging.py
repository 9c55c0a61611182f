"""Packaging, as a user gets it: `python -m build` makes an sdist and a wheel; the wheel holds only the library; installed in a
clean virtual environment, `ser-kit` works.

Takes minutes (a fresh venv installs every dependency), so it runs only when asked:
    SER_KIT_PACKAGING=1 pytest -q tests/test_packaging.py        # or: python tests/test_packaging.py
Nothing is written into the repository: the source is copied to a temporary folder and built there.
"""
import os, re, shutil, subprocess, sys, tarfile, tempfile, time, zipfile
from configparser import ConfigParser
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not os.environ.get('SER_KIT_PACKAGING'), reason='set SER_KIT_PACKAGING=1 to build and install the package (minutes)')
SKIP = {'.git', 'data', 'build', 'dist', '_docs', '_proc', '.benchmarks', '.pytest_cache', '__pycache__', '.ipynb_checkpoints', '.venv', 'venv'}
FORBIDDEN = re.compile(r'\.(wav|flac|ogg|mp3|aiff?|ipynb|csv|npy|npz|skops|safetensors|parquet|pt|pth|bin)$', re.I)
TIMES = {}


def run(cmd, **kw):
    "Run a command, time it, fail with its output."
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    TIMES[' '.join(map(str, cmd[:3]))] = round(time.time() - t, 1)
    print(f"{time.time() - t:7.1f} s  {' '.join(map(str, cmd))[:120]}", flush=True)
    assert r.returncode == 0, f"{cmd} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    "sdist and wheel built from a copy of the source tree (the repository itself is never written)."
    tmp = tmp_path_factory.mktemp('pkg')
    src = tmp / 'src'
    shutil.copytree(ROOT, src, ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith('.egg-info')])
    run([sys.executable, '-m', 'build', '--outdir', str(tmp / 'dist'), str(src)])
    wheel, = (tmp / 'dist').glob('*.whl'); sdist, = (tmp / 'dist').glob('*.tar.gz')
    return tmp, wheel, sdist


def settings():
    c = ConfigParser(delimiters=['=']); c.read(ROOT / 'settings.ini'); return c['DEFAULT']


def test_wheel_holds_only_the_library(built):
    _, wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    bad = [n for n in names if not (re.fullmatch(r'ser_kit/[A-Za-z0-9_]+\.py', n) or n.startswith(f'ser_kit-{settings()["version"]}.dist-info/'))]
    assert not bad, f"unexpected files in the wheel: {bad}"
    assert not [n for n in names if FORBIDDEN.search(n)]
    mods = {Path(n).stem for n in names if n.startswith('ser_kit/')}
    assert {'__init__', 'data', 'features', 'classical', 'cli', 'listen', '_modidx'} <= mods, mods
    meta = zipfile.ZipFile(wheel).read(f'ser_kit-{settings()["version"]}.dist-info/entry_points.txt').decode()
    assert 'ser-kit = ser_kit.cli:main' in meta
    assert wheel.stat().st_size < 1_000_000, wheel.stat().st_size


def test_wheel_requirements_match_settings(built):
    _, wheel, _ = built
    meta = zipfile.ZipFile(wheel).read(f'ser_kit-{settings()["version"]}.dist-info/METADATA').decode()
    reqs = [l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:') and 'extra ==' not in l]
    want = settings()['requirements'].split()
    from packaging.requirements import Requirement
    norm = lambda r: (Requirement(r).name.lower(), frozenset(map(str, Requirement(r).specifier)))
    assert sorted(map(norm, reqs)) == sorted(map(norm, want))
    assert any('sounddevice' in l and 'extra == "mic"' in l for l in meta.splitlines()), 'the mic extra is missing'


def test_sdist_is_sane(built):
    _, _, sdist = built
    with tarfile.open(sdist) as t: names = [n.split('/', 1)[1] for n in t.getnames() if '/' in n]
    for need in ['setup.py', 'pyproject.toml', 'settings.ini', 'README.md', 'LICENSE', 'ser_kit/__init__.py', 'ser_kit/cli.py']:
        assert need in names, f"{need} is missing from the sdist"
    assert not [n for n in names if FORBIDDEN.search(n) or n.startswith('data/')], [n for n in names if FORBIDDEN.search(n)]


def test_clean_venv_install_and_run(built):
    tmp, wheel, _ = built
    venv = tmp / 'venv'
    run([sys.executable, '-m', 'venv', str(venv)])
    py, exe = venv / 'bin' / 'python', venv / 'bin' / 'ser-kit'
    # the CPU build of torch first (as the README says), then the wheel with its dependencies
    run([str(py), '-m', 'pip', 'install', '-q', 'torch==2.13.0'])
    run([str(py), '-m', 'pip', 'install', '-q', str(wheel)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(('SER_KIT', 'PYTHON', 'VIRTUAL_ENV'))}
    env.update(SER_KIT_CACHE=str(tmp / 'cache'), OMP_NUM_THREADS='1')
    work = tmp / 'work'; work.mkdir()  # no data/ folder here: the demo corpus is used
    assert 'demo-corpus' in run([str(exe), '--help'], cwd=work, env=env).stdout
    r = run([str(py), '-c', 'import ser_kit, ser_kit.listen, ser_kit.classical; print(ser_kit.__version__, ser_kit.__file__)'], cwd=work, env=env)
    assert str(venv) in r.stdout and settings()['version'] in r.stdout
    run([str(exe), 'demo-corpus', str(work / 'demo2'), '--actors', '2'], cwd=work, env=env)
    assert len(list((work / 'demo2').rglob('*.wav'))) == 120
    r = run([str(exe), 'demo', '--out', str(work / 'report')], cwd=work, env=env)
    assert 'files' in r.stdout and 'speakers' in r.stdout
    print('timings (s):', TIMES)


if __name__ == '__main__':
    os.environ['SER_KIT_PACKAGING'] = '1'
    sys.exit(pytest.main(['-q', '-s', __file__]))
