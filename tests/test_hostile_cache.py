"Hostile and careless input (issue 14, items 8-11): training on classes that lost every clip, caches never stale."
import os, shutil, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf

import ser_kit.features as F
from ser_kit.features import extract_features, extract_frames, CacheWarning
from ser_kit.data import SettingError

SR = 16000
EMOS = (('neutral', 140, 0.1), ('angry', 260, 0.5), ('sad', 110, 0.05))


def _tone(f0, amp, seed, seconds=1.0):
    "A one-second voice-like tone whose pitch and loudness follow the emotion."
    rng = np.random.default_rng(seed); t = np.arange(int(seconds * SR)) / SR
    y = amp * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))
    return tmp_path / 'cache'


@pytest.fixture()
def corpus(tmp_path):
    "4 speakers x 3 emotions x 2 clips, written fresh for each test (tests may damage it)."
    rows, root = [], tmp_path / 'corpus'; root.mkdir()
    for s, spk in enumerate(('01', '02', '03', '04')):
        for emo, f0, amp in EMOS:
            for k in range(2):
                p = root / f'{spk}_{emo}_{k}.wav'
                sf.write(p, _tone(f0 + 7 * k + 3 * s, amp, seed=10 * s + k), SR)
                rows.append(dict(path=str(p), corpus='custom', speaker=spk, emotion=emo))
    return pd.DataFrame(rows)


def _spoil(paths):
    "Make files undecodable (not audio at all)."
    for p in paths: Path(p).write_bytes(b'RIFF\x24\x00\x00\x00WAVEfmt this is not audio')


def _classical(**kw):
    from ser_kit.classical import EmotionRecognizer
    return EmotionRecognizer(featureset='prosody', n_jobs=1, **kw)


# --- item 8: a class whose every clip is unreadable ------------------------------------------------------------------

def test_class_without_readable_clip_is_dropped_with_a_warning(corpus, cache, tmp_path):
    from ser_kit.models import load_model
    sad = corpus[corpus.emotion == 'sad']; _spoil(sad.path)
    with pytest.warns(UserWarning, match="no readable training clip of 'sad'"):
        rec = _classical().fit(corpus)
    assert rec.labels == ['neutral', 'angry'] and sorted(rec.pipeline_.classes_) == ['angry', 'neutral']
    assert rec.samples_by_class().to_dict() == {'neutral': 8, 'angry': 8}
    back = load_model(rec.save(tmp_path / 'm.skops'))
    good = list(corpus[corpus.emotion != 'sad'].path[:5])
    assert set(back.predict(good)) <= {'neutral', 'angry'}          # no "'sad' is not in list"
    t = back.predict_table(good + list(sad.path[:1]))
    assert len(t) == 5 and list(t.attrs['skipped'].path) == [sad.path.iloc[0]]


def test_fewer_than_two_classes_left_is_a_clear_error(corpus, cache):
    _spoil(corpus[corpus.emotion != 'angry'].path)
    with pytest.raises(SettingError, match="at least two emotions with readable clips.*no readable training clip"):
        _classical().fit(corpus)


def test_cross_validation_survives_folds_missing_a_class(corpus, cache):
    from ser_kit.models import cross_validate
    _spoil(corpus[(corpus.emotion == 'sad') & (corpus.speaker != '01')].path)   # only speaker 01 has readable sad clips
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r = cross_validate(lambda: _classical(adapt=None), corpus, folds=4)
    assert r['folds'] == 4 and len(r['per_fold']) == 4
    by_fold = {tuple(f['test_speakers']): f for f in r['per_fold']}
    assert by_fold[('01',)]['untrained'] == ['sad']                   # trained without sad: its test clips are misses
    assert all(f['untested'] == ['sad'] for k, f in by_fold.items() if k != ('01',))
    assert 'sad' in r['per_class_recall'] and any('no training clip of sad' in n for n in r['notes'])
    assert np.isfinite(r['uar']) and np.isfinite(r['uar_fold_mean'])


def test_cross_validation_with_an_unscorable_fold(corpus, cache):
    from ser_kit.models import cross_validate
    _spoil(corpus[corpus.speaker == '04'].path)                      # a whole speaker unreadable: nothing to score
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r = cross_validate(lambda: _classical(adapt=None), corpus, folds=4)
    empty = [f for f in r['per_fold'] if f['test_speakers'] == ['04']][0]
    assert empty['n_test'] == 0 and np.isnan(empty['uar']) and np.isfinite(r['uar_fold_mean'])
    assert any('no test clip could be scored' in n for n in r['notes'])


# --- item 9: the caches key on content -------------------------------------------------------------------------------

def _same_size_swap(p, y):
    "Overwrite `p` with other audio of the same size and give it back its modification time (as cp -p, rsync -t do)."
    st = os.stat(p); sf.write(p, y, SR)
    assert os.stat(p).st_size == st.st_size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_features_change_when_content_changes_but_size_and_mtime_do_not(corpus, cache):
    p = corpus.path.iloc[0]
    X1 = extract_features([p], 'prosody', n_jobs=1, progress=False)
    _same_size_swap(p, _tone(300, 0.4, seed=99))
    X2 = extract_features([p], 'prosody', n_jobs=1, progress=False)
    fresh = extract_features([p], 'prosody', n_jobs=1, progress=False, cache=False)
    assert not np.array_equal(X1.values, X2.values) and np.array_equal(X2.values, fresh.values)


def test_frames_change_when_content_changes_but_size_and_mtime_do_not(corpus, cache):
    p = corpus.path.iloc[0]
    A1, _ = extract_frames([p], seconds=1.0, n_jobs=1, progress=False)
    _same_size_swap(p, _tone(300, 0.4, seed=99))
    A2, _ = extract_frames([p], seconds=1.0, n_jobs=1, progress=False)
    fresh, _ = extract_frames([p], seconds=1.0, n_jobs=1, progress=False, cache=False)
    assert not np.array_equal(A1, A2) and np.array_equal(A2, fresh)


def test_a_touched_unchanged_file_is_still_a_hit(corpus, cache, monkeypatch):
    p = corpus.path.iloc[0]; calls = []
    extract_features([p], 'prosody', n_jobs=1, progress=False)
    orig = F._extract_chunk
    monkeypatch.setattr(F, '_extract_chunk', lambda ps, fs: (calls.append(len(ps)), orig(ps, fs))[1])
    os.utime(p, ns=(1, 10**18))
    extract_features([p], 'prosody', n_jobs=1, progress=False)
    assert calls == []


def test_grid_search_results_key_on_content_and_labels(corpus, cache):
    from ser_kit.classical import _corpus_tag
    tag = _corpus_tag(corpus)
    assert _corpus_tag(corpus.assign(emotion=corpus.emotion[::-1].to_numpy())) != tag   # relabelled: another corpus
    _same_size_swap(corpus.path.iloc[0], _tone(300, 0.4, seed=99))
    assert _corpus_tag(corpus) != tag                                                  # edited in place: another corpus


# --- item 10: an error that can go away is never cached --------------------------------------------------------------

def _flaky(monkeypatch, target, exc):
    "Make `load_audio` in ser_kit.features raise `exc` once for `target`."
    orig, hits = F.load_audio, []
    def load(p, **kw):
        if str(p) == str(target) and not hits: hits.append(p); raise exc
        return orig(p, **kw)
    monkeypatch.setattr(F, 'load_audio', load)
    return hits


@pytest.mark.parametrize('exc', [PermissionError(13, 'Permission denied'), OSError(5, 'Input/output error'),
                                 MemoryError()])
def test_transient_failure_is_not_cached(corpus, cache, monkeypatch, exc):
    p = corpus.path.iloc[0]; hits = _flaky(monkeypatch, p, exc)
    with pytest.warns(UserWarning, match='skipped 1 of 1'):
        X = extract_features([p], 'prosody', n_jobs=1, progress=False)
    assert len(X) == 0 and hits
    X = extract_features([p], 'prosody', n_jobs=1, progress=False)   # the cause went away: the file is featurised
    assert len(X) == 1 and len(X.attrs['skipped']) == 0


def test_transient_failure_of_frames_is_not_cached(corpus, cache, monkeypatch):
    p = corpus.path.iloc[0]; _flaky(monkeypatch, p, PermissionError(13, 'Permission denied'))
    with pytest.warns(UserWarning, match='skipped 1'):
        X, idx = extract_frames([p], seconds=1.0, n_jobs=1, progress=False)
    assert len(idx) == 0
    X, idx = extract_frames([p], seconds=1.0, n_jobs=1, progress=False)
    assert list(idx) == [0]


def test_unreadable_at_hash_time_is_not_cached(corpus, cache, monkeypatch):
    p = corpus.path.iloc[0]; orig = F.content_hash; hits = []
    def h(q):
        if str(q) == p and not hits: hits.append(q); raise PermissionError(13, 'Permission denied', q)
        return orig(q)
    monkeypatch.setattr(F, 'content_hash', h)
    with pytest.warns(UserWarning, match=r'cannot be read \(Permission denied\)'):
        assert len(extract_features([p], 'prosody', n_jobs=1, progress=False)) == 0
    assert len(extract_features([p], 'prosody', n_jobs=1, progress=False)) == 1


def test_corrupt_content_is_cached_on_its_content(corpus, cache, monkeypatch):
    p = corpus.path.iloc[0]; _spoil([p]); loads = []
    orig = F.load_audio
    monkeypatch.setattr(F, 'load_audio', lambda q, **kw: (loads.append(q), orig(q, **kw))[1])
    for _ in range(2):
        with pytest.warns(UserWarning, match='truncated: no audio data chunk'):
            extract_features([p], 'prosody', n_jobs=1, progress=False)
    assert len(loads) == 1                                            # the decode failure was remembered
    sf.write(p, _tone(200, 0.3, seed=5), SR)                          # repaired: new content, a new key
    assert len(extract_features([p], 'prosody', n_jobs=1, progress=False)) == 1


# --- item 11: a cache that cannot be used ----------------------------------------------------------------------------

def _only_cache_warnings(w):
    return [x for x in w if issubclass(x.category, CacheWarning)]


@pytest.mark.parametrize('how', ['file', 'keys-dir', 'data-dir', 'unwritable'])
def test_broken_cache_runs_without_it_and_warns_once(corpus, cache, monkeypatch, how):
    paths = list(corpus.path[:6])
    ref = extract_features(paths, 'prosody', n_jobs=1, progress=False, cache=False)
    if how == 'file':                                                 # SER_KIT_CACHE is a file
        cache.parent.mkdir(exist_ok=True); cache.write_text('not a folder')
    else:
        extract_features(paths[:2], 'prosody', n_jobs=1, progress=False)
        keys = next((cache / 'features').glob('*.parquet'))
        if how == 'keys-dir': keys.unlink(); keys.mkdir()
        if how == 'data-dir':
            d = next((cache / 'features').glob('*.npy')); d.unlink(); d.mkdir()
        if how == 'unwritable':
            def refuse(dest, write): raise PermissionError(13, 'Permission denied', str(dest))
            monkeypatch.setattr(F, 'atomic_write', refuse)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            X = extract_features(paths, 'prosody', n_jobs=1, progress=False)
            A, idx = extract_frames(paths, seconds=1.0, n_jobs=1, progress=False)
        assert np.array_equal(X.values, ref.values) and len(idx) == 6
        if how != 'data-dir':                                         # a data file gone is rebuilt silently
            assert 1 <= len(_only_cache_warnings(w)) <= 2             # one per cache (features, frames), not per file


def test_predict_with_a_broken_cache(corpus, cache, monkeypatch, tmp_path):
    from ser_kit.models import load_model
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); path = _classical(adapt=None).fit(corpus).save(tmp_path / 'm.skops')
    bad = tmp_path / 'cachefile'; bad.write_text('x'); monkeypatch.setenv('SER_KIT_CACHE', str(bad))
    rec = load_model(path)
    with pytest.warns(CacheWarning):
        t = rec.predict_table(list(corpus.path))                      # a batch (> 4 files) uses the cache
    assert len(t) == len(corpus)


def test_damaged_frames_cache_leaves_no_orphans(corpus, cache):
    paths = list(corpus.path[:3])
    extract_frames(paths, seconds=1.0, n_jobs=1, progress=False)
    d = cache / 'frames'
    keys = next(d.glob('*.parquet')); keys.write_bytes(b'garbage')        # keys unreadable: its data file orphaned
    extract_frames(paths, seconds=1.0, n_jobs=1, progress=False)
    assert len(list(d.glob('*.npy'))) == 1
    data = next(d.glob('*.npy')); data.write_bytes(data.read_bytes()[:100])  # data truncated
    A, idx = extract_frames(paths, seconds=1.0, n_jobs=1, progress=False)
    assert len(idx) == 3 and len(list(d.glob('*.npy'))) == 1 and not list(d.glob('.*.tmp'))
    stale = d / (keys.stem + '-0123abcd.npy'); stale.write_bytes(b'left by a killed run')
    extract_frames(list(corpus.path[3:4]), seconds=1.0, n_jobs=1, progress=False)
    assert not stale.exists() and len(list(d.glob('*.npy'))) == 1
