#!/usr/bin/env python
"""Re-execute the lessons and save their outputs into the notebooks (for contributors).

Usage (from the repository root):  python tools/run_lessons.py [NOTEBOOK ...]   # default: every nbs/*.ipynb but index

Each notebook runs as `nbdev_test` runs it: in-process, cwd `nbs/`, `IN_TEST=1` (the lessons' quick settings, the demo
corpus unless SER_KIT_DATA is set: unset it for the committed run), cells flagged with `tst_flags` (realdata, slow, gpu,
hub, dask, notest) skipped. The outputs are written back and `nbdev_clean` tidies the metadata, so CI's sync check
still passes. Run it from a clean checkout and commit the notebooks it changed; each notebook's time is printed.
"""
import os, sys, time
from pathlib import Path

os.environ['IN_TEST'] = '1'  # the lessons' quick, deterministic settings; widgets show their static output
os.environ.setdefault('PYTHONHASHSEED', '0')
ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'


def skip_flags() -> set:
    "The `tst_flags` of settings.ini: cells carrying one are not run (as under `nbdev_test`)."
    from nbdev.config import get_config
    return set(str(get_config().get('tst_flags', '')).split())


def run_one(path: Path, flags: set) -> float:
    "Execute one notebook in-process with cwd nbs/ and write its outputs back; return the seconds it took."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from nbdev.process import extract_directives
    nb = read_nb(path)

    def no_eval(cell):  # True = skip the cell, as nbdev.test.test_nb decides
        if cell.cell_type != 'code': return True
        if 'nbdev_export' + '(' in cell.source: return True
        dirs = extract_directives(cell, remove=False)  # reads the `#|` lines, leaves the source as it is
        if dirs.get('eval:', [''])[0].lower() == 'false': return True
        return bool(flags & dirs.keys())

    for c in nb.cells:
        if c.cell_type == 'code': c.outputs, c.execution_count = [], None  # skipped cells keep no stale output
    t0, cwd = time.time(), os.getcwd()
    os.chdir(NBS)
    try:
        shell = CaptureShell(path)
        shell.run_cell("from matplotlib_inline.backend_inline import set_matplotlib_formats\n"
                       "set_matplotlib_formats('png')")  # execnb draws at retina (2x) size: plain PNG keeps files small
        shell.run_all(nb, exc_stop=True, preproc=no_eval)
    finally: os.chdir(cwd)
    write_nb(nb, path)
    return time.time() - t0


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or sorted(p for p in NBS.glob('*.ipynb') if p.name != 'index.ipynb')
    flags, total = skip_flags(), 0.0
    for p in paths:
        secs = run_one(p, flags)
        total += secs
        print(f'{p.name:28s} {secs:6.1f} s  {p.stat().st_size / 1e6:5.2f} MB', flush=True)
    from nbdev.clean import nbdev_clean
    for p in paths: nbdev_clean(fname=str(p))  # tidy metadata, keep outputs (settings.ini: clear_all = False)
    print(f'{"all":28s} {total:6.1f} s')
    return 0


if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
