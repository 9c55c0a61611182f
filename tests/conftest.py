import os, shutil, tempfile
import numpy as np, pandas as pd, soundfile as sf
from pathlib import Path
import pytest

# Tests never touch the user's cache or a real corpus unless asked: a private cache per session, removed at its end.
_CACHE = None
if 'SER_KIT_CACHE' not in os.environ:
    _CACHE = os.environ['SER_KIT_CACHE'] = tempfile.mkdtemp(prefix='ser_kit_test_cache_')


def pytest_unconfigure(config):
    "Remove the private cache (in the process that made it: xdist workers inherit it and finish first)."
    if _CACHE: shutil.rmtree(_CACHE, ignore_errors=True)
os.environ.pop('SER_KIT_DATA', None)

SHARED = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def demo_dir():
    "The default demo corpus (built once per test session)."
    from ser_kit.data import make_demo_corpus
    return make_demo_corpus()


@pytest.fixture(scope='session')
def demo(demo_dir):
    from ser_kit.data import load_corpus
    return load_corpus(demo_dir)


def real_data(name):
    "Path of a folder of ../shared/data, or skip the test where it is absent."
    p = SHARED / name
    if not p.is_dir(): pytest.skip(f'{p} not available')
    return p


@pytest.fixture(scope='session')
def tiny_corpus(tmp_path_factory):
    "3 speakers x 2 emotions x 3 one-second tones whose pitch and loudness follow the emotion (CNN, fusion, CLI tests)."
    root = tmp_path_factory.mktemp('tiny'); rows = []; rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for spk in ('01', '02', '03'):
        for emo, f0, amp in (('neutral', 140, 0.1), ('angry', 260, 0.5)):
            for k in range(3):
                y = amp * np.sin(2 * np.pi * (f0 + 10 * k + 5 * int(spk)) * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
                p = root / f'{spk}_{emo}_{k}.wav'; sf.write(p, (y + 0.01 * rng.standard_normal(16000)).astype(np.float32), 16000)
                rows.append(dict(path=str(p), corpus='custom', speaker=spk, emotion=emo, gender='male' if int(spk) % 2 else 'female'))
    return pd.DataFrame(rows)
