"Every lesson opens ready in Jupyter: a python3 kernelspec in each notebook's metadata (issue 18.4)."
import json
from pathlib import Path
import pytest

NBS = sorted((Path(__file__).resolve().parents[1]/'nbs').glob('*.ipynb'))

def test_there_are_notebooks(): assert len(NBS) >= 10

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_kernelspec_python3(nb):
    ks = json.loads(nb.read_text())['metadata'].get('kernelspec', {})
    assert ks.get('name') == 'python3' and ks.get('language') == 'python', f"{nb.name}: kernelspec {ks!r}"
