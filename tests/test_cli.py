"The `ser-kit` command line: help, every command, and one clear line (exit status 2) for every user mistake."
import io, json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf
from ser_kit.cli import (main, error_line, corpus_command, features_command, train_command, predict_command,
                         evaluate_command, listen_command, SPEAKER_COLUMNS)

N_JOBS = 1


def run(*args, **env):
    "`python -m ser_kit.cli ARGS` in a fresh process (SER_KIT_DEBUG only when given)."
    e = {k: v for k, v in os.environ.items() if k != 'SER_KIT_DEBUG'} | env
    return subprocess.run([sys.executable, '-m', 'ser_kit.cli', *args], capture_output=True, text=True, env=e)


def assert_one_error_line(r, *contains):
    "Exit status 2 and exactly one line on stderr, `ser-kit: error: ...`, without a traceback."
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith('ser-kit: error: '), r.stderr
    assert 'Traceback' not in r.stderr
    for c in contains: assert c in lines[0], (c, lines[0])
    return lines[0]


@pytest.fixture(scope='module')
def one_actor(demo_dir, tmp_path_factory):
    "A corpus folder of one demo actor (60 files): quick to check and featurise."
    d = tmp_path_factory.mktemp('one') / 'corpus'; shutil.copytree(Path(demo_dir) / 'Actor_01', d / 'Actor_01')
    return d


@pytest.fixture(scope='module')
def small(demo):
    "Four demo actors (240 files): enough for 2-fold speaker CV, quick to featurise."
    return demo[demo.speaker.isin(sorted(demo.speaker.unique())[:4])].reset_index(drop=True)


@pytest.fixture(scope='module')
def model_file(small, tmp_path_factory):
    from ser_kit.classical import EmotionRecognizer
    rec = EmotionRecognizer('logreg', n_jobs=N_JOBS).fit(small[small.speaker != small.speaker.max()])
    return rec.save(tmp_path_factory.mktemp('m') / 'model.skops')


# ---- help, corpus, demo-corpus ---------------------------------------------------------------------------------------
def test_help_lists_commands():
    r = run('--help'); assert r.returncode == 0
    for c in ('corpus', 'demo-corpus', 'demo', 'features', 'bench', 'train', 'predict', 'evaluate', 'listen', '--debug'):
        assert c in r.stdout, c


def test_corpus_command_writes_manifest_and_reports_bad_files(tmp_path, demo_dir):
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
    assert_one_error_line(r, 'refusing to write inside')
    assert not (demo_dir / 'manifest.csv').exists()


def test_missing_source_is_one_clear_line(tmp_path):
    r = run('corpus', str(tmp_path / 'nope'))
    assert r.returncode == 2 and r.stderr.strip() == f'ser-kit: error: {tmp_path / "nope"}: no such folder or manifest CSV'


def test_demo_corpus_command(tmp_path):
    r = run('demo-corpus', str(tmp_path / 'demo'), '--actors', '1')
    assert r.returncode == 0 and len(list((tmp_path / 'demo' / 'Actor_01').glob('*.wav'))) == 60


# ---- outputs: a missing folder is created before the work, an impossible place is one line -----------------------------
def test_missing_output_folders_are_created(one_actor, tmp_path):
    r = run('corpus', str(one_actor), '--csv', str(tmp_path / 'missing_dir' / 'sub' / 'm.csv'), '-j', '1')
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / 'missing_dir' / 'sub' / 'm.csv')) == 60
    r = run('features', str(one_actor), '--featureset', 'prosody', '--out', str(tmp_path / 'missing_dir' / 'f.csv'), '-j', '1')
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / 'missing_dir' / 'f.csv')) == 60


@pytest.mark.parametrize('command', ['corpus', 'features'])
def test_unwritable_output_is_one_line_before_the_work(one_actor, tmp_path, command):
    (tmp_path / 'a_file').write_text('not a folder')
    out = str(tmp_path / 'a_file' / 'sub' / 'out.csv')
    args = ('corpus', str(one_actor), '--csv', out) if command == 'corpus' else ('features', str(one_actor), '--out', out)
    assert_one_error_line(run(*args), 'out.csv', 'cannot create its folder')


# ---- every user mistake: one line, exit status 2, no traceback ---------------------------------------------------------
MISTAKES = {  # name: (arguments, with {data} the demo corpus and {tmp} a temporary folder; what the line must say)
    'unknown feature set': (['features', '{data}', '--featureset', 'bogus', '--out', '{tmp}/f.csv'],
                            ["unknown feature set 'bogus'", 'choose from', 'default']),
    'features to xlsx': (['features', '{data}', '--out', '{tmp}/f.xlsx'], ['f.xlsx', '.parquet or .csv']),
    'demo corpus into a folder of mine': (['demo-corpus', '{tmp}/mine', '--actors', '1'], ['mine', 'not empty']),
    'bench -n 0': (['bench', 'predict', '{tmp}/model.skops', '-n', '0'], ['-n must be at least 1']),
    'cnn epochs 0': (['train', '{data}', '--model', 'cnn', '--epochs', '0', '-o', '{tmp}/m'], ['epochs']),
    'no such model': (['predict', '{tmp}/no_such_model.skops', '{clip}'], ['no_such_model.skops', 'no such model']),
    'estimator for cnn': (['train', '{data}', '--model', 'cnn', '--estimator', 'svc', '-o', '{tmp}/m'],
                          ['--estimator and --featureset apply to --model classical']),
    'epochs for classical': (['train', '{data}', '--epochs', '3', '-o', '{tmp}/m.skops'], ['epochs: not a setting']),
    'unknown emotion': (['train', '{data}', '--emotions', 'bliss,sad', '-o', '{tmp}/m.skops'], ['bliss']),
    'bad --speaker-from': (['predict', '{tmp}/model.skops', '{clip}', '--speaker-from', 'voice'],
                           ["speakers come from 'auto', 'name', 'folder', 'none', not 'voice'"]),
    'skew 0': (['evaluate', '{data}', '--skew', '0', '--json', '{tmp}/f.csv'], ['--skew must be at least 1']),
    'adapt for cnn': (['train', '{data}', '--model', 'cnn', '--adapt', 'magic', '-o', '{tmp}/m'],
                      ['adapt must be one of z, em, speaker or None']),
    'speeds without adaptation': (['train', '{data}', '--adapt', 'none', '--speeds', '0.9', '-o', '{tmp}/m.skops'],
                                  ['need a speaker-adaptive model']),
    'speed 1 for cnn': (['train', '{data}', '--model', 'cnn', '--speeds', '1', '-o', '{tmp}/m'],
                        ['speeds must be factors between 0.5 and 2 other than 1']),
    'unknown adapt method': (['train', '{data}', '--adapt', 'magic', '-o', '{tmp}/m.skops'], ['adapt must be one of']),
    'speaker batch norm for classical': (['train', '{data}', '--speaker-bn', 'gate', '-o', '{tmp}/m.skops'],
                                         ['speaker_bn: not a setting']),
    'pool for cnn': (['train', '{data}', '--model', 'cnn', '--pool', 'log', '-o', '{tmp}/m'], ['pool: not a setting']),
}


def _args(args, demo_dir, tmp_path):
    clip = sorted(Path(demo_dir).rglob('*.wav'))[0]
    return [a.format(data=demo_dir, tmp=tmp_path, clip=clip) for a in args]


@pytest.mark.parametrize('name', list(MISTAKES))
def test_user_mistake_is_one_line(name, demo_dir, tmp_path):
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'notes.txt').write_text('mine')
    args, says = MISTAKES[name]
    line = assert_one_error_line(run(*_args(args, demo_dir, tmp_path)), *says)
    assert 'an option does not apply' not in line
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'mine'                  # nothing of the user's is touched
    assert not (tmp_path / 'm').exists() and not (tmp_path / 'f.csv').exists()      # nothing half-written


@pytest.mark.parametrize('how', ['flag', 'env'])
def test_debug_shows_the_traceback(demo_dir, tmp_path, how):
    args = _args(MISTAKES['no such model'][0], demo_dir, tmp_path)
    r = run('--debug', *args) if how == 'flag' else run(*args, SER_KIT_DEBUG='1')
    assert r.returncode != 0 and 'Traceback' in r.stderr and 'no such model' in r.stderr


def test_error_line_names_the_file():
    from ser_kit.data import SettingError, OutputPathError
    assert error_line(PermissionError(13, 'Permission denied', '/root/x.csv')) == '/root/x.csv: Permission denied'
    assert error_line(OutputPathError('o.csv', 'no\nway')) == 'o.csv: no way'
    assert error_line(SettingError(None, 'epochs must be at least 1, not 0')) == 'epochs must be at least 1, not 0'
    assert error_line(KeyError('missing column')) == 'missing column'


def test_main_in_process_returns_2(tmp_path, capsys):
    assert main(['predict', str(tmp_path / 'nope.skops'), str(tmp_path / 'x.wav')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('ser-kit: error: ') and 'nope.skops' in err


# ---- features --------------------------------------------------------------------------------------------------------
def test_features_command_writes_parquet_and_csv(one_actor, tmp_path):
    out = io.StringIO()
    df = features_command(str(one_actor), 'prosody', tmp_path / 'f.parquet', n_jobs=N_JOBS, stdout=out)
    back = pd.read_parquet(tmp_path / 'f.parquet')
    assert len(back) == len(df) == 60 and 'f0_mean' in back and 'emotion' in back and '60 files x 26 features' in out.getvalue()
    with pytest.raises(ValueError, match='refusing to write inside'):
        features_command(str(one_actor), 'prosody', one_actor / 'f.csv', n_jobs=N_JOBS)


# ---- train / predict / evaluate (classical) -----------------------------------------------------------------------------
def test_predict_command_folder_with_bad_file(model_file, small, tmp_path):
    from ser_kit.models import load_model
    d = tmp_path / 'in'; d.mkdir()
    for p in small.path.iloc[:3]: shutil.copy(p, d)
    (d / 'broken.wav').write_bytes(b'RIFF\x00\x00\x00\x00WAVEjunk')
    (d / 'empty.wav').write_bytes(b'')
    out, err = io.StringIO(), io.StringIO()
    csv = tmp_path / 'out' / 'pred.csv'
    t = predict_command(str(model_file), [str(d), str(tmp_path / 'missing.wav')], csv=str(csv), stdout=out, stderr=err)
    assert len(t) == 3
    for n in ('broken.wav', 'empty.wav', 'missing.wav'): assert n in err.getvalue()
    got = pd.read_csv(csv)
    labels = load_model(model_file).labels
    assert list(got.columns) == ['path', 'prediction', *SPEAKER_COLUMNS] + [f'p_{l}' for l in labels]
    assert len(got) == 3 and set(got.speaker_from) == {'ravdess name'}
    with pytest.raises(ValueError, match='refusing to write inside'):
        predict_command(str(model_file), [str(d)], csv=str(d / 'x.csv'), stdout=out, stderr=err)


# ---- predict: each file's speaker found by itself -------------------------------------------------------------------
def _predict(model_file, inputs, **kw):
    out, err = io.StringIO(), io.StringIO()
    t = predict_command(str(model_file), [str(i) for i in inputs], stdout=out, stderr=err, **kw)
    return t, out.getvalue(), err.getvalue()


def test_predict_speakers_from_ravdess_names(model_file, demo, tmp_path):
    d = tmp_path / 'mixed'; d.mkdir()                           # two actors in one folder: still two speakers
    for q in demo[demo.speaker.isin(['05', '06'])].groupby('speaker').head(3).path: shutil.copy(q, d)
    t, out, err = _predict(model_file, [d], csv=str(tmp_path / 'p.csv'))
    assert sorted(t.speaker) == ['05'] * 3 + ['06'] * 3 and set(t.speaker_clips) == {3}
    assert set(t.speaker_from) == {'ravdess name'}
    assert all(line.split('\t')[3] in ('speaker 05', 'speaker 06') and line.endswith('3 clips')
               for line in out.splitlines()[:6])
    assert err.splitlines()[0] == 'speaker-adaptive (em): 2 speakers, 3 clips each'
    csv = pd.read_csv(tmp_path / 'p.csv', dtype={'speaker': str})
    assert {'speaker', 'speaker_clips', 'speaker_from'} <= set(csv.columns) and sorted(csv.speaker) == sorted(t.speaker)


def test_predict_speakers_from_every_corpus_naming(model_file, demo, tmp_path):
    names = {'OAF_back_angry.wav': ('OAF', 'tess'), '03a01Fa.wav': ('03', 'emodb'),
             '1001_DFA_ANG_XX.wav': ('1001', 'cremad'), 'DC_sa03.wav': ('DC', 'savee')}
    d = tmp_path / 'corpora'; d.mkdir()
    for n in names: shutil.copy(demo.path.iloc[0], d / n)
    (d / 'JE').mkdir(); shutil.copy(demo.path.iloc[1], d / 'JE' / 'a01.wav')          # SAVEE's folder layout
    t, _, _ = _predict(model_file, [d])
    got = {Path(p).name: (s, f) for p, s, f in zip(t.path, t.speaker, t.speaker_from)}
    assert got == {n: (s, f'{c} name') for n, (s, c) in names.items()} | {'a01.wav': ('JE', 'savee name')}


def test_predict_speakers_from_folders_and_manifest(model_file, demo, tmp_path):
    for i, who in enumerate(('anna', 'anna', 'bob')):                                # names that are no corpus naming
        d = tmp_path / 'me' / who; d.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo.path.iloc[i], d / f'take{i}.wav')
    t, _, _ = _predict(model_file, [tmp_path / 'me'])
    assert sorted(t.speaker) == ['anna', 'anna', 'bob'] and set(t.speaker_from) == {'folder'}
    man = demo.iloc[[0, 1, 60]].assign(speaker=['alice', 'alice', 'carol'])        # the manifest's speakers come first
    man.to_csv(tmp_path / 'm.csv', index=False)
    t, _, err = _predict(model_file, [tmp_path / 'm.csv'])
    assert t.speaker.tolist() == ['alice', 'alice', 'carol'] and set(t.speaker_from) == {'manifest'}
    assert t.speaker_clips.tolist() == [2, 2, 1] and '2 speakers, 1-2 clips each' in err
    t, _, _ = _predict(model_file, [tmp_path / 'm.csv'], speaker_from='name')       # an explicit choice overrides it
    assert t.speaker.tolist() == list(demo.speaker.iloc[[0, 1, 60]]) and set(t.speaker_from) == {'ravdess name'}


def test_cli_predict_speaker_from_none_is_unknown(model_file, demo, tmp_path):
    files = [str(q) for q in demo.path.iloc[:3]]
    r = run('predict', str(model_file), *files, '--speaker-from', 'none', '--csv', str(tmp_path / 'p.csv'))
    assert r.returncode == 0, r.stderr
    p = pd.read_csv(tmp_path / 'p.csv')
    assert p.speaker.isna().all() and set(p.speaker_clips) == {1} and set(p.speaker_from) == {'none'}   # no '?0' ids
    assert 'speaker unknown\t1 clip' in r.stdout
    assert 'speakers unknown' in r.stderr


def test_cli_predict_even_mix_says_whom_it_evened(model_file, demo, tmp_path):
    "--even-mix: a column of who was evened, one stderr line, the setting beside the CSV; a lone clip is never evened."
    d = tmp_path / 'two'; d.mkdir()
    for q in demo[demo.speaker.isin(['05', '06'])].path: shutil.copy(q, d)           # two actors, 60 clips each
    shutil.copy(demo[demo.speaker == '07'].path.iloc[0], d)                          # and one clip of a third
    t, _, err = _predict(model_file, [d], csv=str(tmp_path / 'p.csv'), even_mix=True)
    by = t.groupby('speaker').even_mix.first()
    assert not by['07'] and by[['05', '06']].any()
    assert 'even mix: ' + f"{int(by.sum())} of 3 speakers evened out" in err
    for s in by[by].index:
        np.testing.assert_allclose(t[t.speaker == s].filter(like='p_').mean(), 1 / 8, atol=1e-3)
    assert 'even_mix' in pd.read_csv(tmp_path / 'p.csv').columns
    assert json.loads((tmp_path / 'p.csv.settings.json').read_text())['even_mix'] is True
    plain, _, err = _predict(model_file, [d])
    assert 'even_mix' not in plain and 'even mix' not in err
    np.testing.assert_allclose(plain[plain.speaker == '07'].filter(like='p_'), t[t.speaker == '07'].filter(like='p_'))


def test_evaluate_even_mix_scores_both_readings(small):
    "`evaluate --even-mix`: the evened answers scored, the same models' plain UAR beside, each clip's plain answer kept"
    out = io.StringIO()
    r = evaluate_command(small, folds=2, featureset='prosody', n_jobs=N_JOBS, even_mix=True, stdout=out, speeds=[])
    plain = [p['prediction_plain'] for p in r['predictions']]
    assert len(plain) == r['n_files'] and 0 <= r['even_mix']['uar_without'] <= 1
    from ser_kit.models import uar
    assert abs(uar([p['emotion'] for p in r['predictions']], plain) - r['even_mix']['uar_without']) < 1e-9
    assert f"without it UAR {r['even_mix']['uar_without']:.3f}" in out.getvalue()
    n, m = r['even_mix']['speakers_evened'], r['even_mix']['test_speakers']
    assert m == 4 and 0 <= n <= m and f"even mix: {n} of {m} test speakers' answers evened" in out.getvalue()
    from ser_kit.evaluation import adaptation_note
    assert f"evened per broad speaker (UAR without: {r['even_mix']['uar_without']:.3f})" in adaptation_note(r)
    assert 'even_mix' not in evaluate_command(small, folds=2, featureset='prosody', n_jobs=N_JOBS, stdout=io.StringIO(),
                                              speeds=[], adapt=None)


def test_cli_evaluate_skew_prints_adapted_and_unadapted(small, tmp_path):
    src = tmp_path / 'manifest.csv'; small.to_csv(src, index=False)
    r = run('evaluate', str(src), '--skew', '2', '--folds', '2', '-j', '1', '--json', str(tmp_path / 'e.json'))
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.split()[:1] in (['adapted'], ['unadapted'])}
    assert set(rows) == {'adapted', 'unadapted'} and 'skew 2: each test speaker keeps 2 emotions' in r.stdout
    assert rows['unadapted'].rstrip().endswith('none') and 'speaker-adaptive' in rows['adapted']
    j = json.loads((tmp_path / 'e.json').read_text())
    assert j['skew'] == 2 and j['unadapted']['skew'] == 2 and j['unadapted']['adaptation'] == 'none'
    assert [c['run'] for c in j['comparison']] == ['adapted', 'unadapted'] and j['adaptation'] != 'none'
    assert j['n_files'] == j['unadapted']['n_files'] < len(small) / 2


def test_evaluate_emobox_reports_the_folds_that_ran(small, tmp_path):
    out = io.StringIO()                                           # actors 01-04: EmoBox folds 1, 2, 4 and 5
    r = evaluate_command(small, protocol='emobox', adapt='none', n_jobs=N_JOBS, stdout=out)
    assert (r['protocol'], r['folds'], r['adaptation']) == ('emobox', 4, 'none') and 'unadapted' not in r
    assert [f['test_speakers'] for f in r['per_fold']] == [['01'], ['04'], ['03'], ['02']]
    assert out.getvalue().startswith('emobox protocol, 4 of 6 EmoBox folds ran')


def test_train_and_evaluate_commands(demo_dir, small, tmp_path):
    src = tmp_path / 'manifest.csv'; small.to_csv(src, index=False)
    out = io.StringIO()
    rec = train_command(str(src), estimator='tree', out=str(tmp_path / 'm.skops'), n_jobs=N_JOBS, stdout=out)
    assert (tmp_path / 'm.skops').is_file() and 'model saved to' in out.getvalue() and rec.estimator == 'tree'
    with pytest.raises(ValueError, match='refusing to write inside'):
        train_command(str(demo_dir), out=str(Path(demo_dir) / 'm.skops'))
    r = evaluate_command(str(src), protocol='speaker', folds=2, estimator='logreg', adapt='none',  # one run, no copies
                         json_out=str(tmp_path / 'e.json'), n_jobs=N_JOBS, stdout=out)
    j = json.loads((tmp_path / 'e.json').read_text())
    for k in ('protocol', 'folds', 'n_files', 'labels', 'uar', 'wa', 'macro_f1', 'per_class_recall', 'confusion', 'seconds'):
        assert k in j, k
    assert j['protocol'] == 'speaker' and j['folds'] == 2 and j['n_files'] == len(small) and 'UAR' in out.getvalue()
    r2 = evaluate_command(str(src), protocol='random', folds=2, estimator='logreg', adapt='none', n_jobs=N_JOBS,
                          stdout=out)
    assert r2['protocol'] == 'random' and 'inflated' in out.getvalue()
    with pytest.raises(ValueError, match='unknown model type'): evaluate_command(str(src), model='transformer-xl')


def test_cli_train_then_predict(small, tmp_path):
    src = tmp_path / 'manifest.csv'; small.to_csv(src, index=False)
    r = run('train', str(src), '--estimator', 'logreg', '-o', str(tmp_path / 'models' / 'm.skops'), '-j', '1')
    assert r.returncode == 0 and 'model saved to' in r.stdout, r.stderr
    r = run('predict', str(tmp_path / 'models' / 'm.skops'), small.path.iloc[0], '--csv', str(tmp_path / 'p' / 'p.csv'))
    assert r.returncode == 0 and len(pd.read_csv(tmp_path / 'p' / 'p.csv')) == 1, r.stderr


# ---- train / predict with the deep model types --------------------------------------------------------------------------
FEAT = dict(seconds=1.0, crop=0.6)


def test_train_predict_commands_with_cnn(tiny_corpus, tmp_path):
    pytest.importorskip('torch')
    out = tmp_path / 'cnn_model'; buf = io.StringIO(); tiny_corpus.to_csv(tmp_path / 'tiny.csv', index=False)
    train_command(str(tmp_path / 'tiny.csv'), model='cnn', out=str(out), stdout=buf, epochs=1, batch_size=8, arch='crnn',
                  arch_params=dict(channels=(8, 8), hidden=8), features=FEAT, val_speakers=['03'], progress=False)
    assert (out / 'ser_kit.json').is_file() and 'model saved' in buf.getvalue()
    t = predict_command(str(out), [tiny_corpus.path[0], str(tmp_path / 'missing.wav')], stdout=io.StringIO(),
                        stderr=io.StringIO())
    assert len(t) == 1 and len(t.attrs['skipped']) == 1


def test_train_command_with_fusion(tiny_corpus, tmp_path):
    pytest.importorskip('torch')
    from ser_kit.models import load_model
    out = tmp_path / 'fusion_model'; buf = io.StringIO(); tiny_corpus.to_csv(tmp_path / 'tiny.csv', index=False)
    rec = train_command(str(tmp_path / 'tiny.csv'), model='fusion', out=str(out), stdout=buf, epochs=1, batch_size=8,
                        arch='crnn', arch_params=dict(channels=(8, 8), hidden=8), features=FEAT, val_speakers=['03'],
                        progress=False, pool='log')
    assert sorted(p.name for p in out.iterdir()) == ['classical.skops', 'cnn', 'ser_kit.json']
    assert [type(m).__name__ for m in rec.members] == ['EmotionRecognizer', 'CNNRecognizer']
    back = load_model(out)
    assert back.pool == rec.pool == 'log'                                            # --pool log, saved and read
    assert back.predict(list(tiny_corpus.path[:3])) == rec.predict(list(tiny_corpus.path[:3]))


# ---- listen ----------------------------------------------------------------------------------------------------------
def test_listen_command_without_microphone(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'sounddevice', None)
    assert main(['listen', '--model', 'never-loaded.skops']) == 2      # fails before loading (or training) a model
    out, err = capsys.readouterr()
    assert out == '' and err.startswith('ser-kit: error: no microphone found (') and len(err.splitlines()) == 1, err


# ---- the dimensional model type through the CLI -------------------------------------------------------------------
def test_dimensions_train_predict_evaluate(small, tmp_path):
    "`--task dimensions` trains arousal/valence(/intensity) regressors; predict writes the columns; evaluate gives CCC."
    csv = tmp_path / 'small.csv'; small.to_csv(csv, index=False)
    r = run('train', str(csv), '--task', 'dimensions', '--featureset', 'prosody', '-j', '1', '-o', str(tmp_path / 'dims'))
    assert r.returncode == 0, r.stderr
    clips = list(small.path[:3])
    r = run('predict', str(tmp_path / 'dims'), *clips, '--csv', str(tmp_path / 'p.csv'))
    assert r.returncode == 0, r.stderr
    assert 'arousal' in r.stdout and 'valence' in r.stdout
    t = pd.read_csv(tmp_path / 'p.csv')
    assert {'path', 'speaker', 'speaker_clips', 'arousal', 'valence'} <= set(t.columns) and 'prediction' not in t
    r = run('evaluate', str(csv), '--model', 'dimensions', '--featureset', 'prosody', '--folds', '2', '-j', '1',
            '--json', str(tmp_path / 'd.json'))
    assert r.returncode == 0, r.stderr
    assert 'CCC' in r.stdout and json.loads((tmp_path / 'd.json').read_text())['scores']
    assert_one_error_line(run('train', str(csv), '--task', 'dimensions', '--model', 'cnn', '-o', str(tmp_path / 'x')),
                          '--task dimensions')
    assert_one_error_line(run('predict', str(tmp_path / 'dims'), *clips, '--even-mix'), 'predicts dimensions')


# ---- provenance: how a predictions CSV was made, beside it ----------------------------------------------------------
def test_predict_csv_has_its_settings_beside_it(model_file, small, tmp_path):
    from ser_kit.models import load_model, sha256_file
    csv = tmp_path / 'p.csv'
    _, out, _ = _predict(model_file, list(small.path[:2]), csv=str(csv))
    got = pd.read_csv(csv)                                         # the CSV itself is unchanged: a plain table
    assert list(got.columns[:2]) == ['path', 'prediction'] and len(got) == 2
    s = json.loads((tmp_path / 'p.csv.settings.json').read_text())
    rec = load_model(model_file)
    assert (s['command'], s['n_predicted'], s['n_skipped'], s['speaker_from']) == ('predict', 2, 0, 'auto')
    assert s['model']['seed'] == rec.seed and s['model']['sha256'] == sha256_file(model_file)
    assert s['model']['settings']['estimator'] == 'logreg' and s['model']['trained_with']['sklearn']
    assert {'sklearn', 'ser_kit', 'python'} <= set(s['versions']) and s['inputs'] == list(small.path[:2])
    _predict(model_file, list(small.path[:1]), csv=str(csv))      # a rerun replaces both
    assert json.loads((tmp_path / 'p.csv.settings.json').read_text())['n_predicted'] == 1


def test_predict_never_overwrites_a_strangers_settings_file(model_file, small, tmp_path):
    side = tmp_path / 'p.csv.settings.json'; side.write_text('{"mine": 1}')
    r = run('predict', str(model_file), small.path.iloc[0], '--csv', str(tmp_path / 'p.csv'))
    assert_one_error_line(r, str(side), 'not a ser_kit settings file')
    assert side.read_text() == '{"mine": 1}' and not (tmp_path / 'p.csv').exists()


# ---- --augment on train and evaluate ----------------------------------------------------------------------------------
def _has_augment():
    import importlib.util
    return importlib.util.find_spec('ser_kit.augment') is not None


def test_augment_is_in_the_help():
    for cmd in ('train', 'evaluate'):
        h = run(cmd, '--help').stdout
        assert '--augment KINDS' in h and 'reverb' in h and 'cnn: only none' in h, h


def test_augment_for_the_cnn_is_none_or_one_line(tmp_path):
    from ser_kit.cli import _model_kw
    assert _model_kw('cnn', augment='none')['augment'] == {}       # the CNN's own log-mel augmentation, off
    assert 'augment' not in _model_kw('cnn')                         # not given: the CNN's default
    r = run('train', str(tmp_path), '--model', 'cnn', '--augment', 'noise', '-o', str(tmp_path / 'cnn'))
    assert_one_error_line(r, 'the CNN augments its log-mel spectrograms itself')


@pytest.mark.skipif(_has_augment(), reason='ser_kit.augment exists: the real tests below run')
def test_augment_without_the_module_is_one_line(tmp_path):
    r = run('train', str(tmp_path), '--augment', 'noise', '-o', str(tmp_path / 'm.skops'))
    assert_one_error_line(r, '--augment needs ser_kit.augment')


@pytest.mark.skipif(not _has_augment(), reason='needs ser_kit.augment')
def test_augment_reaches_the_model_constructors():
    import inspect
    from ser_kit.cli import _model_kw
    from ser_kit.models import model_class
    assert _model_kw('classical', augment='noise,gain')['augment'] == ('noise', 'gain')
    assert _model_kw('classical', augment='none')['augment'] == ()
    with pytest.raises(ValueError, match='bogus'): _model_kw('classical', augment='noise,bogus')
    with pytest.raises(ValueError, match='does not apply to --model dimensions'): _model_kw('dimensions', augment='gain')
    if 'augment' in inspect.signature(model_class('wav2vec2').__init__).parameters:
        assert _model_kw('wav2vec2', augment='pitch')['augment'] == ('pitch',)


@pytest.mark.skipif(not _has_augment(), reason='needs ser_kit.augment')
def test_train_and_evaluate_with_augment(tiny_corpus, tmp_path):
    from ser_kit.models import load_model
    csv = tmp_path / 'tiny.csv'; tiny_corpus.to_csv(csv, index=False)
    r = run('train', str(csv), '--estimator', 'logreg', '--featureset', 'prosody', '--adapt', 'none', '--speeds', 'none',
            '--augment', 'noise', '-j', '1', '-o', str(tmp_path / 'm.skops'))
    assert r.returncode == 0, r.stderr
    assert tuple(load_model(tmp_path / 'm.skops').settings()['augment']) == ('noise',)
    r = run('evaluate', str(csv), '--estimator', 'logreg', '--featureset', 'prosody', '--adapt', 'none', '--speeds',
            'none', '--augment', 'gain', '--folds', '3', '-j', '1', '--json', str(tmp_path / 'r.json'))
    assert r.returncode == 0, r.stderr
    assert tuple(json.loads((tmp_path / 'r.json').read_text())['model']['settings']['augment']) == ('gain',)
    assert_one_error_line(run('train', str(csv), '--augment', 'noise,wind', '-o', str(tmp_path / 'x.skops')), 'wind')
