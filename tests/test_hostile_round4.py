"""Hostile input, fourth round: an empty output name, more folds than speakers, a class a fold never saw, SVC with too
few clips of an emotion, no microphone, and an output inside a model folder each get one clear line."""
import json
from pathlib import Path
import pandas as pd, pytest
from test_hostile_cli import run, last_error   # `ser-kit` run in this process, and the one-line error check
from test_hostile_outputs import _clips        # RAVDESS-named voiced clips, quick to make


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "Three speakers, six clips each (neutral and angry), and its manifest."
    root = tmp_path_factory.mktemp('h4')
    d = _clips(root / 'data', n=6, speakers=('01', '02', '03'))
    r = run('corpus', d, '--csv', root / 'm.csv', '-j', '1')
    assert r.returncode == 0, r.stderr
    return d, root / 'm.csv'


QUICK = ('--estimator', 'logreg', '--adapt', 'none', '--speeds', 'none', '-j', '1')


@pytest.mark.parametrize('cmd', [('corpus', '{d}', '--csv'), ('evaluate', '{d}', '--json'), ('train', '{d}', '-o'),
                                 ('features', '{d}', '--out'), ('demo-corpus',)])
def test_an_empty_output_name_is_refused(data, cmd):
    "An unset shell variable (`--csv \"$OUT\"`) must not read as 'no output' and end with exit 0 having written nothing."
    r = run(*[c.format(d=data[0]) for c in cmd], '')
    assert r.returncode == 2 and 'empty name' in r.stderr and 'Traceback' not in r.stderr, r


def test_more_folds_than_speakers_says_how_many_ran(data, tmp_path):
    r = run('evaluate', data[0], '--folds', 5, '--json', tmp_path / 'r.json', *QUICK)
    assert r.returncode == 0, r.stderr
    assert '5 folds asked, but only 3 speakers: 3 folds' in r.stderr
    assert json.loads((tmp_path / 'r.json').read_text())['folds'] == 3


def test_a_class_missing_from_a_folds_training_is_explained(data, tmp_path):
    "Angry clips of one speaker only: the fold testing that speaker cannot train (one emotion left); it is said, not fatal."
    m = pd.read_csv(data[1], dtype=str)
    m = m[(m.emotion != 'angry') | (m.speaker == '01')]
    m.to_csv(tmp_path / 'one.csv', index=False)
    r = run('evaluate', tmp_path / 'one.csv', '--folds', 3, '--out', tmp_path / 'report', *QUICK)
    assert r.returncode == 0, r.stderr
    assert "note: fold 2: not run: its training speakers hold only ['neutral']" in r.stdout, r.stdout
    assert r.stdout.startswith('speaker protocol, 2 folds')                 # the folds that ran
    assert 'not run: its training speakers hold only' in (tmp_path / 'report' / 'report.md').read_text()
    m = m[m.speaker != '01']                                                # no fold can train at all: one line
    m.to_csv(tmp_path / 'none.csv', index=False)
    last_error(run('evaluate', tmp_path / 'none.csv', '--folds', 2, *QUICK), 'no fold could be trained')


def test_svc_with_too_few_clips_of_an_emotion_names_it(data, tmp_path):
    m = pd.read_csv(data[1], dtype=str)
    m = pd.concat([m[m.emotion != 'angry'], m[m.emotion == 'angry'].head(2)])
    m.to_csv(tmp_path / 'few.csv', index=False)
    r = run('train', tmp_path / 'few.csv', '-o', tmp_path / 'svc.skops', '--estimator', 'svc', '--adapt', 'none',
            '--speeds', 'none', '-j', '1')
    last_error(r, "'angry' has 2", 'svc')
    assert not (tmp_path / 'svc.skops').exists()


def test_no_microphone_is_one_error_line(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'sounddevice', None)
    r = run('listen', '--model', 'never-loaded.skops')
    last_error(r, 'no microphone found (')
    assert r.stdout == ''


def test_nothing_is_written_into_a_model_folder(data, tmp_path):
    "A file inside a model folder would make it a folder of someone's things, which the next `train -o` refuses."
    folder = tmp_path / 'model'
    (folder).mkdir(); (folder / 'ser_kit.json').write_text(json.dumps(dict(model_type='cnn', files={})))
    m = tmp_path / 'm.skops'
    assert run('train', data[0], '-o', m, *QUICK).returncode == 0
    r = run('predict', m, data[0], '--csv', folder / 'p.csv')
    last_error(r, 'inside the ser_kit model folder')
    r = run('evaluate', data[0], '--folds', 3, '--out', folder / 'report', *QUICK)
    last_error(r, 'inside the ser_kit model folder')
    assert sorted(p.name for p in folder.iterdir()) == ['ser_kit.json']
