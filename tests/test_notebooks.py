"""Every lesson notebook starts with a learning goal and ends with 2-3 exercises ('Try it yourself')."""
import json, re
from pathlib import Path
import pytest

NBS = sorted((Path(__file__).resolve().parents[1] / 'nbs').glob('[0-9][0-9]*_*.ipynb'))


def markdown_cells(nb: Path) -> list[str]:
    return [''.join(c['source']) for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'markdown']


@pytest.mark.parametrize('nb', NBS, ids=[p.name for p in NBS])
def test_starts_with_a_learning_goal(nb):
    md = markdown_cells(nb)
    assert md and re.search(r'\*\*Learning goals?\.?\*\*', md[0]), f"{nb.name}: the first markdown cell has no '**Learning goal.**'"


def story_end(nb) -> str:
    "The last markdown cell of the story: the one before an '## Under the hood' part, else the notebook's last."
    md = markdown_cells(nb)
    hood = next((i for i, m in enumerate(md) if re.match(r'#+\s*Under the hood', m.strip(), re.I)), len(md))
    return md[hood - 1]


@pytest.mark.parametrize('nb', NBS, ids=[p.name for p in NBS])
def test_story_ends_with_two_or_three_exercises(nb):
    last = story_end(nb)
    assert re.match(r'#+\s*Try it yourself', last.strip(), re.I), \
        f"{nb.name}: the story (before any 'Under the hood' part) does not end with a 'Try it yourself' section"
    items = re.findall(r'^\s*\d+\.\s', last, re.M)
    assert 2 <= len(items) <= 3, f"{nb.name}: 'Try it yourself' has {len(items)} numbered exercises, expected 2-3"


def test_lessons_are_found():
    assert len(NBS) >= 5, [p.name for p in NBS]
