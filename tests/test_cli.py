"The `ser-kit` command line: help, corpus, demo-corpus, and clear errors."
import subprocess, sys
from pathlib import Path
import pandas as pd, numpy as np, soundfile as sf
from ser_kit.cli import main


def run(*args):
    return subprocess.run([sys.executable, '-c', 'import sys; from ser_kit.cli import main; sys.exit(main())', *args],
                          capture_output=True, text=True)


def test_help_lists_commands():
    r = run('--help'); assert r.returncode == 0
    for c in ('corpus', 'demo-corpus', 'demo'): assert c in r.stdout


def test_corpus_command_writes_manifest_and_reports_bad_files(tmp_path, demo_dir):
    import shutil
    d = tmp_path / 'corpus'; shutil.copytree(demo_dir / 'Actor_01', d / 'Actor_01')
    (d / 'Actor_01' / '03-01-03-01-01-01-01.wav').write_bytes(b'')            # an empty file
    (d / 'Actor_01' / '03-01-03-01-01-02-01.wav').write_text('not audio')     # a text file
    r = run('corpus', str(d), '--csv', str(tmp_path / 'm.csv'))
    assert r.returncode == 0, r.stderr
    assert '58 files, 1 speakers' in r.stdout and '2 bad file(s) skipped' in r.stdout
    assert 'empty file' in r.stderr and '03-01-03-01-01-02-01.wav' in r.stderr
    m = pd.read_csv(tmp_path / 'm.csv'); assert len(m) == 58 and {'path', 'speaker', 'emotion', 'duration'} <= set(m.columns)
    assert run('corpus', str(tmp_path / 'm.csv')).returncode == 0  # a manifest CSV is a source too


def test_never_writes_into_the_dataset(tmp_path, demo_dir):
    r = run('corpus', str(demo_dir), '--csv', str(demo_dir / 'manifest.csv'))
    assert r.returncode == 2 and 'refusing to write inside the dataset folder' in r.stderr
    assert not (demo_dir / 'manifest.csv').exists()


def test_missing_source_is_one_clear_line(tmp_path):
    r = run('corpus', str(tmp_path / 'nope'))
    assert r.returncode == 2 and r.stderr.strip() == f'ser-kit: error: {tmp_path / "nope"}: no such folder or manifest CSV'


def test_demo_corpus_command(tmp_path):
    r = run('demo-corpus', str(tmp_path / 'demo'), '--actors', '1')
    assert r.returncode == 0 and len(list((tmp_path / 'demo' / 'Actor_01').glob('*.wav'))) == 60
