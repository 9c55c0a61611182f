"""README.md is nbs/index.ipynb rendered to Markdown; this test keeps the two in step.

Regenerate README.md after editing the notebook with: `python tests/test_readme.py`.
"""
import json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render_readme(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    "The index notebook as Markdown: markdown cells as they are, code cells as fenced Python (nbdev's README layout)."
    cells = json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']
    parts = []
    for c in cells:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#| hide'): continue
        src = re.sub(r'\]\((?!https?:)([^)]+\.(?:ipynb|png))\)', r'](nbs/\1)', src)  # links relative to nbs/ -> to the repo root
        parts.append(src if c['cell_type'] == 'markdown' else f"```python\n{src}\n```")
    header = "<!-- This file is generated from nbs/index.ipynb: edit the notebook, then run `python tests/test_readme.py`. -->\n\n"
    return header + '\n\n'.join(parts) + '\n'


def readme_commands(text: str) -> list[str]:
    "The shell commands in the README's ```sh blocks."
    return [l.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.S) for l in b.splitlines() if l.strip() and not l.startswith('#')]


def test_readme_matches_index_notebook():
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == render_readme(), \
        "README.md is out of date: run `python tests/test_readme.py`"


def test_ci_runs_the_readme_test_command():
    cmds = readme_commands((ROOT / 'README.md').read_text(encoding='utf-8'))
    test_cmd = next(c for c in cmds if 'nbdev_test' in c and 'pytest' in c)
    assert test_cmd in (ROOT / '.ci' / 'run').read_text(encoding='utf-8')
    assert any(c.endswith('ser-kit demo') for c in cmds)


if __name__ == '__main__':
    (ROOT / 'README.md').write_text(render_readme(), encoding='utf-8')
    print('README.md written from nbs/index.ipynb')
