import os, tempfile
from pathlib import Path
import pytest

# Tests never touch the user's cache or a real corpus unless asked: a private cache per session.
os.environ.setdefault('SER_KIT_CACHE', tempfile.mkdtemp(prefix='ser_kit_test_cache_'))
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
