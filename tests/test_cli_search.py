"`ser-kit search`: the speaker-grouped grid search as a command; its table, picture and settings; one line per mistake."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from ser_kit.cli import main, search_command, SEARCH_COLUMNS, SEARCH_FILES

ARGS = ('--estimators', 'logreg,tree', '--folds', '3', '-j', '1')   # a tiny grid: 2 + 2 candidates, 3 folds


@pytest.fixture(scope='module')
def tiny_csv(tiny_corpus, tmp_path_factory):
    "The tiny corpus (3 speakers x 2 emotions x 3 clips) as a manifest CSV, outside its audio folder."
    p = tmp_path_factory.mktemp('lists') / 'tiny.csv'; tiny_corpus.to_csv(p, index=False)
    return p


@pytest.fixture(scope='module')
def searched(tiny_csv, tmp_path_factory):
    "(exit status, stdout, stderr, folder) of one search run through `main`."
    out = tmp_path_factory.mktemp('s') / 'search'
    rc, o, e = _main('search', tiny_csv, *ARGS, '--out', out)
    return rc, o, e, out


def _main(*argv):
    "`main` in this process: (exit status, stdout, stderr)."
    import io, contextlib
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e): rc = main([str(a) for a in argv])
    return rc, o.getvalue(), e.getvalue()


def one_error_line(rc, err, *contains):
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith('ser-kit: error: '), (rc, err)
    for c in contains: assert c in lines[0], (c, lines[0])


def test_search_writes_table_plot_and_settings(searched, tiny_corpus):
    rc, out, err, d = searched
    assert rc == 0, err
    assert sorted(p.name for p in d.iterdir()) == sorted(SEARCH_FILES)
    t = pd.read_csv(d / 'results.csv')
    assert list(t.columns) == SEARCH_COLUMNS and sorted(t.estimator) == ['logreg', 'tree']
    assert t[['uar', 'accuracy']].stack().between(0, 1).all() and (t[['uar_std', 'accuracy_std', 'fit_s']] >= 0).all().all()
    assert list(t.uar) == sorted(t.uar, reverse=True)                       # best first
    assert {json.loads(p).keys() <= {'C', 'max_depth'} for p in t.best_params} == {True}
    assert (d / 'comparison.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'results written to' in out and 'logreg' in out and 'warning' not in err


def test_search_is_speaker_independent_and_recorded(searched, tiny_corpus):
    from ser_kit.classical import ESTIMATORS
    s = json.loads((searched[3] / 'settings.json').read_text())
    # every speaker is tested in exactly one fold: never a random split of clips
    assert sorted(sum(s['fold_test_speakers'], [])) == sorted(tiny_corpus.speaker.unique())
    assert all(len(f) == 1 for f in s['fold_test_speakers'])
    assert s['command'] == 'search' and s['seeds']['folds'] == 0 and s['settings']['folds'] == 3
    assert s['grids'] == {'logreg': ESTIMATORS['logreg'].small, 'tree': ESTIMATORS['tree'].small}
    assert {'sklearn', 'ser_kit', 'numpy'} <= set(s['versions']) and s['date'][:2] == '20'
    assert (s['n_files'], s['n_speakers'], s['labels']) == (18, 3, ['angry', 'neutral'])


def test_accuracy_is_scored_on_the_same_folds(searched):
    # each test speaker has 3 clips of each emotion: balanced folds, where accuracy and UAR must agree fold by fold
    t = pd.read_csv(searched[3] / 'results.csv')
    assert (t.accuracy - t.uar).abs().max() < 1e-9 and (t.accuracy_std - t.uar_std).abs().max() < 1e-9


def test_the_tones_are_learnt_on_unseen_speakers(searched):
    t = pd.read_csv(searched[3] / 'results.csv').set_index('estimator')
    assert t.loc['logreg', 'uar'] >= 0.8, t                # pitch and loudness follow the emotion in every speaker


def test_rerun_replaces_its_own_folder_only(searched, tiny_csv, tmp_path):
    rc, _, err = _main('search', tiny_csv, *ARGS, '--out', searched[3])
    assert rc == 0, err
    mine = tmp_path / 'mine'; mine.mkdir(); (mine / 'notes.txt').write_text('my notes')
    rc, _, err = _main('search', tiny_csv, *ARGS, '--out', mine)
    one_error_line(rc, err, str(mine), 'not a ser_kit search folder')
    assert sorted(p.name for p in mine.iterdir()) == ['notes.txt']


def test_never_writes_among_the_audio(tiny_corpus, tiny_csv):
    audio = Path(tiny_corpus.path.iloc[0]).parent
    before = sorted(p.name for p in audio.iterdir())
    rc, _, err = _main('search', tiny_csv, *ARGS, '--out', audio / 'search')
    one_error_line(rc, err, 'holds input audio')
    assert sorted(p.name for p in audio.iterdir()) == before


def test_default_folder_is_made_in_the_working_directory(tiny_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = search_command(str(tiny_csv), 'logreg', folds=2, n_jobs=1, stdout=open(os.devnull, 'w'))
    assert (tmp_path / 'ser_kit_search' / 'results.csv').is_file() and list(res.estimator) == ['logreg']


@pytest.mark.parametrize('case', ['unknown estimator', 'missing folder', 'too few speakers', 'one speaker', 'bad folds'])
def test_user_mistakes_are_one_line(case, tiny_corpus, tiny_csv, tmp_path):
    one = tmp_path / 'one.csv'; tiny_corpus[tiny_corpus.speaker == '01'].to_csv(one, index=False)
    argv, says = {
        'unknown estimator': ((tiny_csv, '--estimators', 'svc,xgboost'), "--estimators: unknown 'xgboost'"),
        'missing folder': ((tmp_path / 'no_such_corpus',), f"{tmp_path / 'no_such_corpus'}: no such folder"),
        'too few speakers': ((tiny_csv, '--folds', '4'), f"{tiny_csv}: 3 speakers, too few for 4"),
        'one speaker': ((one, '--folds', '2'), f"{one}: 1 speaker, too few"),
        'bad folds': ((tiny_csv, '--folds', '1'), "--folds must be at least 2"),
    }[case]
    rc, _, err = _main('search', *argv, '--out', tmp_path / 'out', '-j', '1')
    one_error_line(rc, err, says)
    assert not (tmp_path / 'out').exists()


def test_console_script_error_and_help(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'ser_kit.cli', 'search', str(tmp_path / 'nope'), '--estimators', 'rf'],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and 'Traceback' not in r.stderr, r.stderr
    h = subprocess.run([sys.executable, '-m', 'ser_kit.cli', 'search', '--help'], capture_output=True, text=True).stdout
    for opt in ('--estimators', '--features', '--out', '--folds', '--grid', '--seed', '--jobs'): assert opt in h, opt
