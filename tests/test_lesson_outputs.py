"The lessons are committed with their outputs (so they read on GitHub), with pictures, and stay small."
import json, re
from pathlib import Path
import pytest

NBS = Path(__file__).resolve().parent.parent / 'nbs'
NOTEBOOKS = sorted(p for p in NBS.glob('*.ipynb') if p.name != 'index.ipynb')
LESSONS = [p for p in NOTEBOOKS if re.match(r'0[0-5]', p.name)]  # the lessons 00-05 (with their b/c parts)
MAX_BYTES = 2_500_000


def outputs(path: Path) -> list[dict]:
    "Every output of every code cell of a notebook."
    return [o for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]


def figures(path: Path) -> int:
    "How many pictures (PNG or SVG outputs) a notebook shows."
    return sum(1 for o in outputs(path) if {'image/png', 'image/svg+xml'} & set(o.get('data', {})))


def test_there_are_lessons():
    assert len(LESSONS) >= 6, [p.name for p in NOTEBOOKS]
    assert any(p.name.startswith('06') for p in NOTEBOOKS)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_outputs(path):
    assert outputs(path), f'{path.name} has no outputs: run `python tools/run_lessons.py {path.relative_to(NBS.parent)}`'


@pytest.mark.parametrize('path', LESSONS, ids=lambda p: p.name)
def test_lesson_shows_three_figures(path):
    assert figures(path) >= 3, f'{path.name} shows {figures(path)} figures'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_small(path):
    assert path.stat().st_size < MAX_BYTES, f'{path.name} is {path.stat().st_size / 1e6:.2f} MB'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_no_error_outputs(path):
    errs = [o.get('ename') for o in outputs(path) if o.get('output_type') == 'error']
    assert not errs, f'{path.name} was committed with errors: {errs}'


def test_counters():
    "The helpers above count what they should (a check that can fail)."
    nb = {'cells': [{'cell_type': 'code', 'outputs': [{'output_type': 'display_data', 'data': {'image/png': 'x'}},
                                                      {'output_type': 'stream', 'text': 'hi'}]}]}
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / 'x.ipynb'
        f.write_text(json.dumps(nb))
        assert len(outputs(f)) == 2 and figures(f) == 1
