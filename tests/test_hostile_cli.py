"Hostile and careless input (issue 14): the user's data is never touched, a batch finishes and lists what it skipped."

import contextlib, hashlib, io, json, os, shutil, subprocess, sys, traceback, warnings
from typing import NamedTuple
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf
from ser_kit.cli import main
from ser_kit.data import (
    load_audio,
    load_tess,
    load_corpus,
    scan_audio,
    read_manifest,
    AbsurdAudioError,
    TooLongAudioError,
    UnreadableAudioError,
    ManifestError,
)

ROOT = Path(__file__).resolve().parents[1]
CLIP = '03-01-01-01-01-01-01.wav'


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run(*args, **env):
    "`ser-kit ARGS` run by `main` in this process as in a fresh one: its environment, cwd, warnings shown."
    out, err, saved, cwd = io.StringIO(), io.StringIO(), dict(os.environ), os.getcwd()
    os.environ.pop('SER_KIT_DEBUG', None); os.environ.update({'HF_HUB_OFFLINE': '1'} | env); os.chdir(ROOT)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.resetwarnings(); warnings.simplefilter('default')
            warnings.showwarning = lambda m, c, f, n, *_: err.write(warnings.formatwarning(m, c, f, n))   # on stderr
            try: rc = main([str(a) for a in args])
            except SystemExit as e: rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
            except Exception: traceback.print_exc(file=err); rc = 1
    finally:
        os.environ.clear(); os.environ.update(saved); os.chdir(cwd)
    return Ran(rc, out.getvalue(), err.getvalue())


def last_error(r, *contains):
    "Exit status 2, no traceback, and the last stderr line is `ser-kit: error: ...` holding each of `contains`."
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert 'Traceback' not in r.stderr, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith('ser-kit: error: '), r.stderr
    for c in contains:
        assert c in line, (c, line)
    return line


def tree_hash(folder) -> str:
    "SHA-256 over every name and every byte below `folder` (links not followed): equal means untouched."
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            h.update(os.fsencode(os.path.relpath(p, folder)))
            if not os.path.islink(p):
                h.update(Path(p).read_bytes())
    return h.hexdigest()


@pytest.fixture(scope='module')
def demo2(tmp_path_factory):
    from ser_kit.data import make_demo_corpus

    return make_demo_corpus(tmp_path_factory.mktemp('demo2') / 'demo', n_actors=2, n_jobs=1)


@pytest.fixture
def corpus(demo2, tmp_path):
    "A private copy of a 2-actor demo corpus (120 clips) and its manifest, written beside it."
    d = tmp_path / 'corpus'
    shutil.copytree(demo2, d)
    m = tmp_path / 'm.csv'
    r = run('corpus', d, '--csv', m, '-j', '1')
    assert r.returncode == 0, r.stderr
    return d, m


@pytest.fixture(scope='module')
def model(demo2, tmp_path_factory):
    p = tmp_path_factory.mktemp('model') / 'm.skops'
    r = run('train', demo2, '-o', p, '--estimator', 'logreg', '--adapt', 'none', '-j', '1')   # quick: no speed copies
    assert r.returncode == 0, r.stderr
    return p


# ---- 1. no output among the input audio, no stranger's file overwritten ----------------------------------------------
def test_train_never_overwrites_a_clip_named_by_a_manifest(corpus):
    d, m = corpus
    before = tree_hash(d)
    last_error(run('train', m, '-o', d / 'Actor_01' / CLIP, '-j', '1'), CLIP)
    last_error(run('train', m, '-o', d / 'Actor_01' / 'model.skops', '-j', '1'), 'holds input audio')
    assert tree_hash(d) == before


@pytest.mark.parametrize(
    'args',
    [
        ('features', '{m}', '--out', '{d}/Actor_01/f.csv'),
        ('evaluate', '{m}', '--json', '{d}/Actor_02/r.json'),
        ('evaluate', '{m}', '--out', '{d}/Actor_02/report'),
        ('corpus', '{m}', '--csv', '{d}/Actor_01/again.csv'),
        ('predict', '{model}', '{d}/Actor_01/' + CLIP, '--csv', '{d}/Actor_01/p.csv'),
    ],
)
def test_no_output_lands_among_input_audio(corpus, model, args):
    d, m = corpus
    before = tree_hash(d)
    last_error(run(*[a.format(d=d, m=m, model=model) for a in args]), 'holds input audio')
    assert tree_hash(d) == before


def test_strangers_files_and_audio_are_never_overwritten(corpus, model, tmp_path):
    d, m = corpus
    notes = tmp_path / 'notes.csv'
    notes.write_text('my,own\n1,2\n')
    clip = tmp_path / 'mine' / 'keep.wav'   # in a folder of its own: nothing is ever written beside audio
    clip.parent.mkdir()
    shutil.copy(d / 'Actor_01' / CLIP, clip)
    disguised = tmp_path / 'keep.csv'
    shutil.copy(clip, disguised)
    last_error(run('predict', model, d / 'Actor_01' / CLIP, '--csv', notes), 'not a ser_kit predictions file')
    last_error(run('predict', model, d / 'Actor_01' / CLIP, '--csv', disguised), 'never overwrites audio')
    last_error(run('corpus', m, '--csv', m), 'is an input')
    last_error(run('train', m, '--model', 'cnn', '-o', tmp_path / 'cnn.wav'), 'without the .wav suffix')
    last_error(run('train', m, '-o', tmp_path / 'model.zip'), 'must end in .skops')
    last_error(run('predict', model, d / 'Actor_01' / CLIP, '--csv', clip.parent / 'p.csv'), 'folder that holds audio')
    assert notes.read_text() == 'my,own\n1,2\n' and disguised.read_bytes() == clip.read_bytes()
    assert sorted(os.listdir(clip.parent)) == ['keep.wav']
    ok = tmp_path / 'p.csv'
    for _ in range(2):
        assert run('predict', model, d / 'Actor_01' / CLIP, '--csv', ok).returncode == 0  # ours: replaced


def test_audio_reached_through_a_link_or_not_read_is_still_protected(corpus, model, tmp_path):
    "An input folder that links to audio elsewhere, and a folder of audio this command does not read: nothing lands."
    d, m = corpus
    before = tree_hash(d)
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'b').symlink_to(d / 'Actor_02')
    last_error(run('predict', model, tmp_path / 'in', '--csv', d / 'Actor_02' / 'sub' / 'p.csv'), 'holds input audio')
    last_error(run('predict', model, d / 'Actor_01', '--csv', d / 'Actor_02' / 'p.csv'), 'a folder that holds audio')
    assert tree_hash(d) == before


def test_manifest_with_some_speakers_missing_trains_and_evaluates(corpus, tmp_path):
    "Empty `speaker` cells take the speaker of the file name (RAVDESS here), with a warning; no traceback."
    d, m = corpus
    df = pd.read_csv(m, dtype={'speaker': str})
    df.loc[::7, 'speaker'] = None
    part = tmp_path / 'part.csv'
    df.to_csv(part, index=False)
    r = run('train', part, '-o', tmp_path / 'p.skops', '--estimator', 'logreg', '--adapt', 'em', '-j', '1')
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
    assert 'without a speaker' in r.stderr and 'taken from the file name or folder' in r.stderr
    r = run('evaluate', part, '--folds', '2', '--estimator', 'logreg', '--adapt', 'none', '-j', '1')   # 1 actor a fold
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr


def test_trailing_slash_and_unwritable_folder_refused_before_the_work(model, corpus, tmp_path):
    d, m = corpus
    r = run('predict', model, d / 'Actor_01' / CLIP, '--csv', f"{tmp_path}/out.csv/")
    last_error(r, 'ends in a slash')
    assert not (tmp_path / 'out.csv').exists() and CLIP not in r.stdout
    if Path('/proc/self').is_dir():
        last_error(run('predict', model, d / 'Actor_01' / CLIP, '--csv', '/proc/p.csv'), '/proc/p.csv', 'cannot write')


# ---- 2. output places checked before the work ------------------------------------------------------------------------
def test_output_places_checked_before_the_work(corpus, tmp_path):
    d, m = corpus
    (tmp_path / 'a_file').write_text('x')
    (tmp_path / 'dir.csv').mkdir()
    r = run('features', m, '--out', tmp_path / 'new' / 'dir' / 'f.csv', '-j', '1')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'new' / 'dir' / 'f.csv').is_file()
    for out, msg in (
        (tmp_path / 'x.txt', '.parquet or .csv'),
        (tmp_path / 'a_file' / 'f.csv', 'cannot create its folder'),
        (tmp_path / 'dir.csv', 'is a folder'),
    ):
        r = run('features', m, '--out', out, '-j', '1')
        last_error(r, str(out), msg)
        assert 'default:' not in r.stderr  # refused before any extraction (no progress bar)


# ---- 3, 6. unreadable files and folders: skipped, every one listed, beside the output --------------------------------
def _unreadable(d, monkeypatch):
    "Make one clip and the folder Actor_02 unreadable: chmod for a normal user; as root (who reads anyway), simulated."
    bad_file, bad_dir = d / 'Actor_01' / CLIP, d / 'Actor_02'
    if os.geteuid() != 0:
        bad_file.chmod(0)
        bad_dir.chmod(0)
        return bad_file, bad_dir
    import ser_kit.data as data

    real_trunc, real_scandir = data.wav_truncation, os.scandir

    def trunc(p):
        if Path(p) == bad_file:
            raise PermissionError(13, 'Permission denied', str(p))
        return real_trunc(p)

    def scandir(p='.'):
        if isinstance(p, (str, os.PathLike)) and Path(p) == bad_dir:
            raise PermissionError(13, 'Permission denied', str(p))
        return real_scandir(p)

    monkeypatch.setattr(data, 'wav_truncation', trunc)
    monkeypatch.setattr(data.os, 'scandir', scandir)
    return bad_file, bad_dir


@pytest.mark.parametrize('cmd', ['corpus', 'features', 'train'])
def test_unreadable_file_and_folder_are_skipped_and_listed(corpus, tmp_path, monkeypatch, capsys, cmd):
    d, _ = corpus
    bad_file, bad_dir = _unreadable(d, monkeypatch)
    try:
        out = {
            'corpus': ('--csv', tmp_path / 'o.csv'),
            'features': ('--out', tmp_path / 'o.csv'),
            'train': ('-o', tmp_path / 'o.skops', '--estimator', 'logreg', '--adapt', 'none'),
        }[cmd]
        rc = main([cmd, str(d), *map(str, out), '-j', '1'])
        err = capsys.readouterr().err
    finally:
        for p in (bad_file, bad_dir):
            p.chmod(0o755)
    assert rc == 0, err
    lines = err.splitlines()
    assert any(str(bad_file) in l and 'cannot be read' in l for l in lines), err
    assert f"skipped {bad_dir}: folder cannot be read" in err
    side = pd.read_csv(f"{out[1]}.skipped.csv")
    assert set(side.path) == {str(bad_file), str(bad_dir)}


def test_predict_lists_unreadable_files(corpus, model, monkeypatch, capsys):
    d, _ = corpus
    bad_file, bad_dir = _unreadable(d, monkeypatch)
    try:
        rc = main(['predict', str(model), str(d)])
        err = capsys.readouterr().err
    finally:
        for p in (bad_file, bad_dir):
            p.chmod(0o755)
    assert rc == 0 and str(bad_file) in err and str(bad_dir) in err, err


def test_every_skipped_file_is_listed(corpus, tmp_path):
    d, m = corpus
    before = tree_hash(d)
    (d / 'Actor_01' / '03-01-03-01-01-01-01.wav').write_bytes(b'')
    (d / 'Actor_01' / '03-01-03-01-01-02-01.wav').write_text('not audio')
    (d / 'Actor_02' / '03-01-03-01-01-01-02.wav').write_bytes(b'RIFF')
    before = tree_hash(d)
    r = run('features', d, '--out', tmp_path / 'f.parquet', '-j', '1', '--no-cache')
    assert r.returncode == 0, r.stderr
    for name in ('03-01-03-01-01-01-01.wav', '03-01-03-01-01-02-01.wav', '03-01-03-01-01-01-02.wav'):
        assert name in r.stderr
    assert (
        len(pd.read_csv(tmp_path / 'f.parquet.skipped.csv')) == 3
        and len(pd.read_parquet(tmp_path / 'f.parquet')) == 117
    )
    assert tree_hash(d) == before


# ---- 4. names that are not UTF-8 -------------------------------------------------------------------------------------
def test_names_that_are_not_utf8_are_skipped_and_reported(corpus, model, tmp_path):
    d, _ = corpus
    os.rename(d / 'Actor_01' / CLIP, os.fsencode(d / 'Actor_01') + b'/caf\xe9_01.wav')
    os.mkdir(os.fsencode(d) + b'/Actor_\xe9')
    shutil.copy(d / 'Actor_02' / '03-01-02-01-01-01-02.wav', os.fsencode(d) + b'/Actor_\xe9/03-01-02-01-01-01-02.wav')
    before = tree_hash(d)
    for args in (
        ('corpus', d, '--csv', tmp_path / 'm.csv'),
        ('features', d, '--out', tmp_path / 'f.csv'),
        ('predict', model, d, '--csv', tmp_path / 'p.csv'),
    ):
        r = run(*args, '-j', '1') if args[0] != 'predict' else run(*args)
        assert r.returncode == 0, r.stderr
        assert 'not valid UTF-8' in r.stderr and 'caf' in r.stderr and 'Actor_' in r.stderr, r.stderr
    assert len(pd.read_csv(tmp_path / 'p.csv')) == 119  # the renamed clip and the odd folder are left out
    assert tree_hash(d) == before


def test_a_file_argument_that_is_not_utf8_is_reported(corpus, model, tmp_path):
    d, _ = corpus
    odd = os.fsencode(tmp_path) + b'/\xe9t\xe9.wav'
    shutil.copy(d / 'Actor_01' / CLIP, odd)
    r = subprocess.run(
        [sys.executable, '-m', 'ser_kit.cli', 'predict', os.fsencode(model), odd, d / 'Actor_01' / CLIP],
        capture_output=True,
        cwd=ROOT,
        env=os.environ | {'HF_HUB_OFFLINE': '1'},
    )
    assert r.returncode == 0 and b'Traceback' not in r.stderr, r.stderr
    assert b'\\xe9t\\xe9.wav: file name is not valid UTF-8' in r.stderr and CLIP.encode() in r.stdout


# ---- 5. absurd samples are corrupt audio, in every path --------------------------------------------------------------
def test_absurd_and_infinite_samples_are_corrupt(tmp_path, model):
    y = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    sf.write(tmp_path / 'huge.wav', y * 1e30, 16000, subtype='FLOAT')
    z = (0.1 * y).astype(np.float64)
    z[100] = np.inf
    sf.write(tmp_path / 'inf.wav', z, 16000, subtype='DOUBLE')
    with pytest.raises(AbsurdAudioError, match='absurd'):
        load_audio(tmp_path / 'huge.wav')
    r = run('predict', model, tmp_path / 'huge.wav', tmp_path / 'inf.wav')
    last_error(r, 'nothing could be predicted')
    assert 'absurd' in r.stderr and 'infinity' in r.stderr


def test_absurd_samples_in_the_cnn_predict_path(tiny_corpus, tmp_path):
    from ser_kit.cnn import CNNRecognizer

    y = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    sf.write(tmp_path / 'huge.wav', y * 1e30, 16000, subtype='FLOAT')
    rec = CNNRecognizer(
        arch='resnet1d',
        epochs=1,
        batch_size=8,
        arch_params=dict(channels=(8, 8), dropout=0.0),
        features=dict(seconds=1.0, crop=0.6),
        n_jobs=1,
    ).fit(tiny_corpus)
    t = rec.predict_table([tiny_corpus.path.iloc[0], str(tmp_path / 'huge.wav')])
    assert len(t) == 1 and 'absurd' in t.attrs['skipped'].error.iloc[0]


# ---- 7. silent successes are errors ----------------------------------------------------------------------------------
def test_silent_successes_are_errors(tmp_path, model, tiny_corpus):
    last_error(run('features', '/typo', '--out', tmp_path / 'f.csv'), '/typo')
    assert not (tmp_path / 'f.csv').exists()
    r = run('predict', model, tmp_path / 'nope.wav')   # one bad input: one line naming it, nothing else
    last_error(r, 'nope.wav: no such file or folder')
    assert r.stderr.strip().count('\n') == 0, r.stderr
    m = tmp_path / 'tiny.csv'
    tiny_corpus.to_csv(m, index=False)
    r = run(
        'train',
        m,
        '--model',
        'wav2vec2',
        '--checkpoint',
        'facebok/wav2vec2-bse',
        '-o',
        tmp_path / 'w2v',
        '--epochs',
        '1',
        '-q',
    )
    last_error(r, 'facebok/wav2vec2-bse', 'not found')
    assert not (tmp_path / 'w2v').exists()


# ---- 12. long clips are refused before decoding ----------------------------------------------------------------------
def test_long_clip_refused_before_decoding(corpus, tmp_path):
    d, _ = corpus
    sr = 8000
    sf.write(d / 'Actor_01' / '03-01-02-01-01-02-01.wav', np.full(sr * 5, 0.1, np.float32), sr)
    with pytest.raises(TooLongAudioError, match='more than the 3 s limit'):
        load_audio(d / 'Actor_01' / '03-01-02-01-01-02-01.wav', max_seconds=3)
    r = run('corpus', d, '-j', '1', SER_KIT_MAX_SECONDS='4.5')
    assert r.returncode == 0 and 'SER_KIT_MAX_SECONDS' in r.stderr and '119 files' in r.stdout, r.stderr


# ---- 13. symlinked folders are followed, loops are not ---------------------------------------------------------------
def test_symlinked_folders_followed_once(demo2, tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'Actor_01').symlink_to(demo2 / 'Actor_01')
    (data / 'again').symlink_to(demo2 / 'Actor_01')
    (data / 'loop').symlink_to(data)
    (data / 'ravdess').symlink_to(demo2)
    files, bad = scan_audio(data)
    assert len(files) == 120 and not bad
    r = run('corpus', data, '-j', '1')
    assert r.returncode == 0 and '120 files, 2 speakers' in r.stdout, r.stderr


# ---- 14. TESS near misses --------------------------------------------------------------------------------------------
def test_tess_name_near_miss_taken_from_folder(tmp_path):
    y = 0.3 * np.sin(np.arange(8000) / 5).astype(np.float32)
    for folder, name in (
        ('OAF_neutral', 'OAF_back_neutral'),
        ('OAF_neutral', 'OA_bite_neutral'),
        ('YAF_pleasant_surprised', 'YAF_back_ps'),
        ('OAF_Pleasant_surprise', 'OA_bath_ps'),
        ('OAF_neutral', 'OA_bite_angry'),
    ):
        (tmp_path / folder).mkdir(exist_ok=True)
        sf.write(tmp_path / folder / f'{name}.wav', y, 16000)
    with pytest.warns(UserWarning, match='skipped 1'):
        df = load_tess(tmp_path)
    row = df[df.path.str.endswith('OA_bite_neutral.wav')].iloc[0]
    assert (row.speaker, row.emotion, row.word) == ('OAF', 'neutral', 'bite')
    assert df[df.path.str.endswith('OA_bath_ps.wav')].iloc[0].emotion == 'surprised'
    assert len(df) == 4  # OA_bite_angry in a neutral folder stays a mystery


# ---- 15. manifests that are not manifests ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    'content, msg',
    [
        (b'', 'empty'),
        (bytes(range(256)) * 4, 'not a text CSV'),
        (b'\xff\xfe\xa2 latin-1 text', 'not a text CSV'),
        (b'a,b\n1,2\n', 'lacks column'),
    ],
    ids=['empty', 'binary', 'not-utf8', 'no-columns'],
)
def test_bad_manifest_named_in_one_line(tmp_path, content, msg):
    f = tmp_path / 'bad.csv'
    f.write_bytes(content)
    with pytest.raises(ManifestError, match=msg):
        read_manifest(f)
    r = run('corpus', f)
    last_error(r, str(f), msg)
    assert len(r.stderr.strip().splitlines()) == 1


def test_manifest_rows_without_a_path_are_skipped(tmp_path, tiny_corpus):
    m = tiny_corpus.copy()
    m.loc[2, 'path'] = None
    m.to_csv(tmp_path / 'm.csv', index=False)
    df = read_manifest(tmp_path / 'm.csv')
    assert len(df) == len(m) - 1 and df.attrs['skipped_files'] == [(str(tmp_path / 'm.csv'), 'row 4: no path')]


def test_predict_scans_its_input_folder_once_for_all_output_checks(corpus, model, tmp_path, monkeypatch):
    "`predict --csv` checks three outputs (the CSV, its skipped list, its settings); the input folder is scanned once."
    import ser_kit.data as data

    d, _ = corpus
    calls, scan = [], data.scan_audio
    monkeypatch.setattr(data, 'scan_audio', lambda *a, **k: calls.append(a[0]) or scan(*a, **k))   # input_folders' scan
    assert main(['predict', str(model), str(d), '--csv', str(tmp_path / 'p.csv')]) == 0
    assert [Path(c) for c in calls] == [d], calls
    assert (tmp_path / 'p.csv').is_file() and (tmp_path / 'p.csv.settings.json').is_file()


# ---- output places a careless or hostile user can name: a folder is replaced only when it is wholly ser_kit's ----
def test_a_stray_ser_kit_json_does_not_make_a_folder_of_audio_replaceable(corpus, tmp_path):
    d, m = corpus
    mine = tmp_path / 'mine'
    shutil.copytree(d / 'Actor_01', mine)
    (mine / 'ser_kit.json').write_text('{}')
    before = tree_hash(mine)
    last_error(run('train', m, '--model', 'dimensions', '-o', mine, '-j', '1'), 'never replaces a folder of recordings')
    assert tree_hash(mine) == before


def test_a_model_folder_never_replaces_its_own_training_data(corpus, tmp_path):
    d, m = corpus
    proj = tmp_path / 'proj'
    shutil.copytree(d, proj / 'data')
    (proj / 'ser_kit.json').write_text('{}')
    before = tree_hash(proj)
    last_error(run('train', proj / 'data', '--model', 'dimensions', '-o', proj, '-j', '1'), 'an input of this command')
    assert tree_hash(proj) == before


def test_a_folder_with_someone_elses_report_html_is_not_a_report(corpus, tmp_path):
    d, m = corpus
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'report.html').write_text('<html>my page</html>')
    (site / 'metrics.json').write_text('hi')
    before = tree_hash(site)
    r = run('evaluate', m, '--adapt', 'none', '--speeds', 'none', '-j', '1', '--out', site)
    last_error(r, 'not a ser_kit report')
    assert tree_hash(site) == before


def test_no_new_folder_inside_a_folder_of_recordings(corpus, model, tmp_path):
    d, m = corpus
    before = tree_hash(d)
    last_error(run('predict', model, d / 'Actor_02', '--csv', d / 'Actor_01' / 'new' / 'p.csv'), 'holds audio')
    last_error(run('demo-corpus', d / 'Actor_01' / 'demo', '--actors', '1'), 'holds audio')
    assert tree_hash(d) == before


def test_a_broken_link_as_output_is_refused(corpus, model, tmp_path):
    d, m = corpus
    link = tmp_path / 'p.csv'
    link.symlink_to(tmp_path / 'elsewhere' / 'p.csv')
    last_error(run('predict', model, d / 'Actor_01' / CLIP, '--csv', link), 'broken symbolic link')
    assert link.is_symlink()


def _tampered(model: Path, dest: Path, **changes) -> Path:
    "A copy of a classical model file with its adaptation state edited (through skops, as an editor of the file would)."
    from ser_kit.classical import import_skops

    sio = import_skops()
    obj = sio.load(model, trusted=sio.get_untrusted_types(file=model))
    meta = json.loads(obj['meta'])
    meta['adaptation'].update(changes)
    sio.dump(dict(obj, meta=json.dumps(meta)), dest)
    return dest


@pytest.fixture(scope='module')
def adaptive_model(demo2, tmp_path_factory):
    p = tmp_path_factory.mktemp('adaptive') / 'm.skops'
    r = run('train', demo2, '-o', p, '--estimator', 'logreg', '--speeds', 'none', '-j', '1')
    assert r.returncode == 0, r.stderr
    return p


def test_an_edited_adaptation_state_fails_at_load_with_the_file_named(adaptive_model, demo2, tmp_path):
    "It used to hang (iters=1e8), raise a traceback (iters=1.5) or fail at prediction without naming the file."
    from ser_kit.models import load_model, ModelFileError

    bad = _tampered(adaptive_model, tmp_path / 'bad.skops', iters=10**8)
    last_error(run('predict', bad, Path(demo2) / 'Actor_01' / CLIP), 'bad.skops', 'adaptation state', 'from 1 to 100')
    for changes, says in [(dict(iters=1.5), 'whole number'), (dict(sd_=[0.0]), 'do not fit'),
                          (dict(classes_=['a', 'b']), 'do not fit')]:
        with pytest.raises(ModelFileError, match=says):
            load_model(_tampered(adaptive_model, tmp_path / 'bad.skops', **changes))


def test_a_bad_list_among_other_inputs_is_skipped_and_a_plain_list_is_enough(corpus, model, tmp_path):
    d, m = corpus
    (tmp_path / 'empty.csv').write_text('')
    (tmp_path / 'list.csv').write_text(f'path\n{d / "Actor_01" / CLIP}\n')
    other = sorted((d / 'Actor_02').glob('*.wav'))[0]
    r = run('predict', model, other, tmp_path / 'empty.csv', tmp_path / 'list.csv')
    assert r.returncode == 0, r.stderr
    assert 'empty.csv' in r.stderr and r.stdout.count('.wav') == 2
    r = run('predict', model, d / 'Actor_01' / CLIP, d / 'Actor_01' / CLIP)
    assert r.returncode == 0 and r.stdout.count('.wav') == 1, r.stdout   # one clip, counted once for its speaker


def test_a_file_listed_twice_in_a_manifest_counts_once_and_two_emotions_for_it_are_refused(corpus, tmp_path):
    d, m = corpus
    df = pd.read_csv(m)
    twice = pd.concat([df, df.iloc[:3]])
    twice.to_csv(tmp_path / 'twice.csv', index=False)
    r = run('corpus', tmp_path / 'twice.csv')
    assert r.returncode == 0 and f'{len(df)} files' in r.stdout, (r.stdout, r.stderr)
    assert r.stderr.count('counted once') == 3, r.stderr
    clash = pd.concat([df, df.iloc[:1].assign(emotion='sad' if df.emotion.iloc[0] != 'sad' else 'happy')])
    clash.to_csv(tmp_path / 'clash.csv', index=False)
    last_error(run('corpus', tmp_path / 'clash.csv'), 'clash.csv', 'listed with different emotions')


def test_a_file_with_no_voice_is_predicted_and_called_a_guess(corpus, model, tmp_path):
    d, m = corpus
    sr = 16000
    sf.write(tmp_path / 'hum.wav', 0.3 * np.sin(2 * np.pi * 100 * np.arange(2 * sr) / sr), sr)
    sf.write(tmp_path / 'hiss.wav', np.random.default_rng(0).normal(0, 0.1, 2 * sr), sr)
    r = run('predict', model, d / 'Actor_01' / CLIP, tmp_path / 'hum.wav', tmp_path / 'hiss.wav')
    assert r.returncode == 0 and r.stdout.count('.wav') == 3, (r.stdout, r.stderr)   # every file still answered
    line = next(l for l in r.stderr.splitlines() if 'no voice' in l)
    assert line.startswith('ser-kit: warning: 2 file(s)') and 'hum.wav (a steady tone' in line, line
    assert 'hiss.wav (no voiced speech' in line and CLIP not in line, line
