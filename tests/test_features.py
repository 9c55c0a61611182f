"Tests of ser_kit.features: feature-set shapes, finiteness, cache behaviour, bad files, parallel determinism, Dask backend."
import os, sys, threading, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf

SR = 16000

def _voice(f0, seconds=1.0, sr=SR, seed=0):
    "A voice-like test signal: a harmonic tone with vibrato and an amplitude envelope, plus a little noise."
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds*sr))/sr
    ph = 2*np.pi*np.cumsum(f0*(1 + 0.02*np.sin(2*np.pi*5*t)))/sr
    y = sum(np.sin(k*ph)/k for k in range(1, 8))*np.hanning(len(t))
    return (0.3*y/np.abs(y).max() + 0.003*rng.standard_normal(len(t))).astype(np.float32)

@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path/'cache'))
    return tmp_path/'cache'

@pytest.fixture(scope='module')
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp('wavs')
    paths = []
    for i, (f0, sr) in enumerate([(120, 16000), (220, 48000), (180, 22050), (300, 16000), (150, 44100), (250, 16000)]):
        p = d/f"clip{i}.wav"; sf.write(p, _voice(f0, 1.2, sr, seed=i), sr); paths.append(str(p))
    bad = d/'corrupt.wav'; bad.write_bytes(b'RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio')
    return paths, str(bad)

from ser_kit.features import (FEATURESETS, FeatureSet, extract_features, extract_frames, frame_features, f0_track,
                              cnn1d, get_featureset)

@pytest.mark.parametrize('name,n', [('default', None), ('cnn1d', 54), ('prosody', None), ('seed004', 193),
                                    ('rich', None)])
def test_featureset_shape_finite(name, n):
    y = _voice(200, 1.0)
    names, v = FEATURESETS[name].compute(y)
    assert len(names) == len(v) == len(set(names))
    if n: assert len(v) == n
    assert v.dtype == np.float32 and np.isfinite(v).all()
    # degenerate input (near silence, very short) stays finite
    _, v2 = FEATURESETS[name].compute(np.full(800, 1e-4, np.float32))
    assert np.isfinite(v2).all() and len(v2) == len(v)

def test_rich_shape_and_default_prefix():
    "`rich` is `default` plus about 700 more columns, every name unique, float32 and finite."
    y = _voice(180, 2.0)
    names, v = FEATURESETS['rich'].compute(y)
    dnames, dv = FEATURESETS['default'].compute(y)
    assert names[:len(dnames)] == dnames and np.array_equal(v[:len(dv)], dv)
    assert len(names) == len(set(names)) == len(v) == 900
    assert v.dtype == np.float32 and np.isfinite(v).all()
    assert {'mfcc30_p25_0', 'mel64_mean_63', 'energy_db_slope', 'f0_semitones_range', 'dmfcc30_std_29'} <= set(names)

@pytest.mark.parametrize('pad', ['zeros', 'noise'])
def test_rich_finite_on_silence_padded_clips(pad):
    "Silence around the voice (zeros or faint noise) leaves `rich` finite and its frame statistics nearly unchanged."
    y = _voice(220, 1.0)
    noise = 1e-5*np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    sil = np.zeros(SR, np.float32) if pad == 'zeros' else noise
    names, v = FEATURESETS['rich'].compute(np.concatenate([sil, y, sil]))   # padded by whole hops: frames align
    _, v0 = FEATURESETS['rich'].compute(y)
    assert np.isfinite(v).all()
    col = [i for i, n in enumerate(names) if n.startswith('mfcc30_mean_')]
    np.testing.assert_allclose(v[col], v0[col], rtol=0.05, atol=1.0)
    for clip in (np.zeros(SR, np.float32), np.full(800, 1e-4, np.float32), np.zeros(10, np.float32)):
        assert np.isfinite(FEATURESETS['rich'].compute(clip)[1]).all()

def test_rich_deterministic(wavs, cache):
    "The same numbers every call, in-process and in parallel workers."
    y = _voice(150, 1.5, seed=3)
    assert np.array_equal(FEATURESETS['rich'].compute(y)[1], FEATURESETS['rich'].compute(y.copy())[1])
    paths, _ = wavs
    X1 = extract_features(paths, 'rich', n_jobs=1, cache=False, progress=False)
    X2 = extract_features(paths, 'rich', n_jobs=2, cache=False, progress=False)
    assert np.array_equal(X1.values, X2.values) and X1.shape == (len(paths), 900)

def test_f0_track_accuracy():
    f0, _ = f0_track(_voice(220, 1.0))
    assert abs(np.median(f0[f0 > 0]) - 220) < 5

def test_extract_table_aligned_with_manifest(wavs, cache):
    paths, _ = wavs
    man = pd.DataFrame({'path': paths, 'emotion': 'x'}, index=[10*i for i in range(len(paths))])
    X = extract_features(man, 'default', n_jobs=1, progress=False)
    assert list(X.index) == list(man.index)
    assert (X.dtypes == np.float32).all() and np.isfinite(X.values).all()
    assert len(X.attrs['skipped']) == 0

def test_cache_hit_and_miss(wavs, cache, monkeypatch):
    import ser_kit.features as F
    paths, _ = wavs
    calls = []
    orig = F._extract_chunk
    monkeypatch.setattr(F, '_extract_chunk', lambda ps, fs: (calls.append(len(ps)), orig(ps, fs))[1])
    X1 = extract_features(paths[:4], 'prosody', n_jobs=1, progress=False)
    assert sum(calls) == 4
    X2 = extract_features(paths[:4], 'prosody', n_jobs=1, progress=False)     # hit: nothing computed
    assert sum(calls) == 4 and np.array_equal(X1.values, X2.values)
    extract_features(paths, 'prosody', n_jobs=1, progress=False)              # only the 2 new files
    assert sum(calls) == 6
    os.utime(paths[0], ns=(1, 10**18))                                        # touched, same bytes: still a hit
    extract_features(paths, 'prosody', n_jobs=1, progress=False)
    assert sum(calls) == 6
    q = cache.parent/'copy.wav'; q.write_bytes(Path(paths[0]).read_bytes())
    extract_features([q], 'prosody', n_jobs=1, progress=False)
    assert sum(calls) == 7
    st = q.stat(); q.write_bytes(Path(paths[3]).read_bytes())                 # other audio, same size and mtime
    assert q.stat().st_size == st.st_size; os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns))
    Xq = extract_features([q], 'prosody', n_jobs=1, progress=False)           # changed content: one miss
    assert sum(calls) == 8 and np.array_equal(Xq.values, X1.values[3:4])
    fs = FeatureSet('cnn1d-13', cnn1d, params=dict(n_mfcc=13))                # changed setting: all misses
    assert fs.key() != FEATURESETS['cnn1d'].key()
    Xs = extract_features(paths[:3], fs, n_jobs=1, progress=False)
    assert sum(calls) == 11 and Xs.shape[1] == 2*(2 + 13 + 5)
    assert len(list(cache.rglob('*.tmp'))) == 0                               # atomic writes leave no temporaries
    X3 = extract_features(paths[:4], 'prosody', n_jobs=1, progress=False, cache=False)
    assert sum(calls) == 15

def test_corrupt_file_skipped_and_reported(wavs, cache):
    paths, bad = wavs
    lst = paths[:2] + [bad, str(Path(bad).with_name('missing.wav'))] + paths[2:3]
    with pytest.warns(UserWarning, match='skipped 2 of 5'):
        X = extract_features(lst, 'default', n_jobs=1, progress=False)
    assert list(X.index) == [0, 1, 4]
    assert sorted(X.attrs['skipped'].path) == sorted([bad, str(Path(bad).with_name('missing.wav'))])
    with pytest.warns(UserWarning):                                           # failures are reported from the cache as well
        X = extract_features(lst, 'default', n_jobs=1, progress=False)
    assert len(X.attrs['skipped']) == 2

def test_skipped_files_name_the_path_once(wavs, cache):
    "A report reads `<path>: <reason>`: the error recorded for a file is the reason, without its type or path."
    paths, bad = wavs
    missing = str(Path(bad).with_name('missing.wav'))
    for _ in range(2):                                                     # computed, then from the cache
        with pytest.warns(UserWarning) as w:
            X = extract_features([paths[0], bad, missing], 'prosody', n_jobs=1, progress=False)
        err = dict(zip(X.attrs['skipped'].path, X.attrs['skipped'].error))
        assert err[missing] == 'no such file'
        assert bad not in err[bad] and not err[bad].startswith('CorruptAudioError'), err[bad]
        assert str(w[0].message).count(bad) == 1
    with pytest.warns(UserWarning) as w:
        extract_frames([paths[0], bad], kind='mfcc', seconds=1.0, n_jobs=1, progress=False)
    msg = str(w[0].message)
    assert msg.count(bad) == 1 and 'CorruptAudioError' not in msg, msg

def test_parallel_identical(wavs, cache, monkeypatch):
    import ser_kit.features as F
    paths, _ = wavs
    X1 = extract_features(paths, 'default', n_jobs=1, cache=False, progress=False)
    X2 = extract_features(paths, 'default', n_jobs=2, cache=False, progress=False)      # 6 files: in this process
    monkeypatch.setattr(F, 'SERIAL_FILES', 0); monkeypatch.setattr(F, 'WORKER_START_S', 0)
    monkeypatch.setattr(F, '_idle_cores', lambda a, b: 8.0)                              # as if the cores were idle
    X3 = extract_features(paths, 'default', n_jobs=2, cache=False, progress=False)      # this process and 2 workers
    for X in (X2, X3): assert np.array_equal(X1.values, X.values) and list(X1.columns) == list(X.columns)

def _pid_after(chunk):
    "A chunk that takes 0.1 s a file, returning the process that computed it."
    time.sleep(0.1*len(chunk)); return os.getpid()
_pid_after.__module__ = '__main__'   # sent to workers by value, as a notebook's function is

def test_small_batches_stay_in_this_process():
    import ser_kit.features as F
    got = list(F._chunk_results(_pid_after, list(range(20)), F._chunks(20, 2), 2))
    assert {p for _, p in got} == {os.getpid()} and sorted(k for k, _ in got) == list(range(len(F._chunks(20, 2))))

def test_big_batches_go_to_workers_when_a_core_is_free(monkeypatch):
    "The first chunk is timed here; the rest go to one worker per free core (plain joblib: no GIL-starved feeder)."
    import ser_kit.features as F
    monkeypatch.setattr(F, 'SERIAL_FILES', 0); monkeypatch.setattr(F, 'WORKER_START_S', 0)
    monkeypatch.setattr(F, '_idle_cores', lambda a, b: 1.0)                # one core free beside this process
    sl = F._chunks(20, 2)
    got = dict(F._chunk_results(_pid_after, list(range(20)), sl, 2))
    assert sorted(got) == list(range(len(sl))) and got[0] == os.getpid()
    assert os.getpid() not in [got[k] for k in range(1, len(sl))], 'after the first chunk, workers do the work'


@pytest.mark.parametrize('fork', [True, False])
def test_workers_forked_or_loky_give_the_same_features(wavs, cache, monkeypatch, fork):
    "Forked workers (a command on Linux) and loky's (a Jupyter kernel, a program with threads) agree with one process."
    import ser_kit.features as F
    if fork and not sys.platform.startswith('linux'): pytest.skip('fork: Linux only')
    paths, _ = wavs
    X1 = extract_features(paths, 'default', n_jobs=1, cache=False, progress=False)
    monkeypatch.setattr(F, 'SERIAL_FILES', 0); monkeypatch.setattr(F, 'WORKER_START_S', 0)
    monkeypatch.setattr(F, 'FORK_START_S', 0); monkeypatch.setattr(F, '_can_fork', lambda: fork)
    monkeypatch.setattr(F, '_idle_cores', lambda a, b: 1.0)
    used = []
    real = F._fork_results
    monkeypatch.setattr(F, '_fork_results', lambda *a: used.append(1) or real(*a))
    X2 = extract_features(paths, 'default', n_jobs=2, cache=False, progress=False)
    assert np.array_equal(X1.values, X2.values) and bool(used) == fork
    assert F._FORKED is None, 'the forked workers\' inheritance is cleared'


def test_fork_only_from_a_single_threaded_process():
    import ser_kit.features as F
    if not sys.platform.startswith('linux'): assert not F._can_fork(); return
    stop = threading.Event(); t = threading.Thread(target=stop.wait); t.start()
    try: assert not F._can_fork(), 'another thread may hold a lock a forked copy would wait on for ever'
    finally: stop.set(); t.join()


def test_a_busy_machine_keeps_the_work_in_this_process(monkeypatch):
    import ser_kit.features as F
    monkeypatch.setattr(F, 'SERIAL_FILES', 0); monkeypatch.setattr(F, 'WORKER_START_S', 0)
    monkeypatch.setattr(F, '_idle_cores', lambda a, b: 0.3)                # other programs keep the cores busy
    got = dict(F._chunk_results(_pid_after, list(range(20)), F._chunks(20, 2), 2))
    assert set(got.values()) == {os.getpid()}


def test_unknown_featureset_names_the_known_ones():
    from ser_kit.data import SettingError
    with pytest.raises(SettingError, match="unknown feature set 'nope'; choose from cnn1d, default"): get_featureset('nope')
    with pytest.raises(SettingError, match="unknown feature set"): extract_features(['x.wav'], 'nope')


def test_one_cache_helper_for_features_and_frames(wavs, cache):
    "Both caches are `_FileCache`s: a keys table naming one .npy, stale rows of a changed file replaced, no temporaries."
    import ser_kit.features as F
    paths, _ = wavs
    extract_features(paths[:3], 'prosody', n_jobs=1, progress=False)
    extract_frames(paths[:3], kind='mfcc', seconds=1.0, n_jobs=1, progress=False)
    for kind in ('features', 'frames'):
        assert len(list((cache/kind).glob('*.parquet'))) == 1 and len(list((cache/kind).glob('*.npy'))) == 1, kind
    os.utime(paths[0], ns=(1, 10**18))
    extract_features(paths[:3], 'prosody', n_jobs=1, progress=False)
    extract_features(paths[1:4], 'prosody', n_jobs=1, progress=False)   # one more file: the keys and data replaced
    keys = pd.read_parquet(next((cache/'features').glob('*.parquet')))
    assert sorted(keys['__path']) == sorted(paths[:4]) and len(list((cache/'features').glob('*.npy'))) == 1
    assert len(list(cache.rglob('*.tmp'))) == 0

def test_frames(wavs, cache):
    paths, bad = wavs
    a = frame_features(_voice(200, 1.0), kind='logmel', seconds=2.0)
    assert a.shape == (3, 64, 201) and a.dtype == np.float32 and np.isfinite(a).all()
    with pytest.warns(UserWarning, match='skipped 1'):
        X, idx = extract_frames(paths[:3] + [bad], kind='mfcc', seconds=1.0, n_jobs=1, progress=False)
    assert X.shape == (3, 3, 40, 101) and list(idx) == [0, 1, 2]
    X2, _ = extract_frames(paths[:3], kind='mfcc', seconds=1.0, n_jobs=1, progress=False)
    assert np.array_equal(X, X2)

def test_dask_backend_identical(wavs, cache):
    pytest.importorskip('distributed')
    import joblib
    from dask.distributed import Client, LocalCluster
    paths, _ = wavs
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c, Client(c):
        with joblib.parallel_config(backend='dask'):
            Xd = extract_features(paths, 'default', n_jobs=2, cache=False, progress=False)
    Xl = extract_features(paths, 'default', n_jobs=1, cache=False, progress=False)
    # the same files and features; values equal up to float32 rounding (Dask worker threads share the process' BLAS pool,
    # whose summation order can differ in the last bit)
    assert list(Xd.index) == list(Xl.index) and list(Xd.columns) == list(Xl.columns)
    np.testing.assert_allclose(Xd.values, Xl.values, rtol=1e-5, atol=1e-5)

REAL = Path(__file__).resolve().parents[2]/'shared'/'data'/'ravdess-dev'

@pytest.mark.skipif(not REAL.is_dir(), reason='real data not available')
def test_real_files(cache):
    files = sorted(REAL.glob('Actor_01/*.wav'))[:4]
    X = extract_features([str(f) for f in files], 'default', n_jobs=1, progress=False)
    assert X.shape[0] == 4 and np.isfinite(X.values).all()


NB_SET = '''
def my_set(y, sr):
    "A student's feature set, defined in the lesson's kernel: mean MFCCs, and which process computed them."
    fr = Frames(y, sr)
    return [('mfcc', fr.mfcc.mean(0)), ('pid', os.getpid())]
register_featureset('mine', my_set)
register_featureset('mfcc13', cnn1d, n_mfcc=13)
X13 = extract_features(PATHS, 'mfcc13', progress=False)
Xm = extract_features(PATHS, 'mine', cache=False, progress=False)
import functools
from joblib import Parallel, delayed
_task = _portable(functools.partial(_extract_chunk, fs=get_featureset('mine')))
W = Parallel(n_jobs=2)(delayed(_task)([p]) for p in PATHS)   # what the engine sends its workers
'''

def test_notebook_defined_featureset_runs_in_workers(wavs, cache):
    "Lesson 01 run as nbdev_test/Jupyter runs it (exported cells in the kernel's __main__): its own feature sets and a "
    "student's run with the default n_jobs=-1 in worker processes (issue 18.3: the lock and cached helpers pickled)."
    from joblib import effective_n_jobs
    if effective_n_jobs(-1) < 2: pytest.skip('needs 2 cores for n_jobs=-1 to start workers')
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    nbs = Path(__file__).resolve().parents[1]/'nbs'
    sh = CaptureShell(path=nbs)
    for c in read_nb(nbs/'01_features.ipynb').cells:
        if c.cell_type == 'code' and c.source.lstrip().startswith('#| export'):
            sh.run(c.source); assert not sh.exc, (c.source[:80], sh.exc)
    sh.run('import os'); sh.user_ns['PATHS'] = wavs[0]
    assert sh.user_ns['cnn1d'].__module__ == '__main__'           # the situation of the issue
    sh.run(NB_SET)
    assert sh.exc is None, (repr(sh.exc), repr(sh.exc.__cause__ or sh.exc.__context__))
    X13, Xm = sh.user_ns['X13'], sh.user_ns['Xm']
    assert X13.shape == (6, 2*(2 + 13 + 5)) and np.isfinite(X13.values).all()
    assert len(Xm) == 6                                            # 6 files: computed here (too few for workers)
    pids = {float(v[1][0][-1]) for v in sh.user_ns['W']}             # the 'pid' feature of each file
    assert not (pids & {float(os.getpid())}) and len(sh.user_ns['W']) == 6   # computed in workers, not here
    from ser_kit.features import cnn1d
    from ser_kit.data import load_audio
    np.testing.assert_allclose(X13.values[0], np.concatenate([np.atleast_1d(v).ravel() for _, v in
                               cnn1d(load_audio(wavs[0][0], sr=SR), SR, n_mfcc=13)]), rtol=1e-5, atol=1e-5)


_CRASH = '''
import os, sys
import ser_kit.features as F
def die(chunk):
    if os.getpid() != PARENT: os._exit(3)      # a worker that dies mid-chunk, as a crashing decoder would
    return [0] * len(chunk)
PARENT = os.getpid()
try: list(F._fork_results(die, list(range(8)), [slice(0, 4), slice(4, 8)], [0, 1], 2))
except Exception as e: print(type(e).__name__, e); sys.exit(0)
print('no error'); sys.exit(1)
'''

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='fork: Linux only')
def test_a_forked_worker_that_dies_is_an_error_not_a_hang():
    import subprocess
    r = subprocess.run([sys.executable, '-c', _CRASH], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'SerKitError a worker process died' in r.stdout, (r.stdout, r.stderr[-2000:])

def test_no_progress_bar_on_a_pipe(wavs, cache, capsys):
    "A bar asked for where stderr is not a terminal (a pipe, a log file; pytest's capture) writes no '\\r' lines."
    paths, _ = wavs
    X = extract_features(paths, 'default', n_jobs=1, progress=True)
    assert len(X) == len(paths) and '\r' not in capsys.readouterr().err
