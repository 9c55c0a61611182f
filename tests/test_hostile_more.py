"""Siblings of issue 14 (hostile input) and issue 18 (the lessons in a browser) in data, models, wav2vec2 and listen:
the Wav2Vec2 embedding cache keys on content and survives a broken cache, a class without readable clips is dropped,
an unusable SER_KIT_CACHE never crashes the demo corpus or the default model, folder scans report what they leave out,
warnings point at the caller's line, the corpus browser shows once and says when no clip matches."""
import io, os, sys, tempfile, warnings
os.environ.setdefault('HF_HUB_OFFLINE', '1')  # never reach for the hub in tests
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, pytest

import ser_kit.data as D
from ser_kit.data import SettingError, load_corpus, load_ravdess, get_corpus, make_demo_corpus, writable_cache_dir
from ser_kit.features import CacheWarning
from ser_kit.models import expand_inputs

torch = pytest.importorskip('torch'); torch.set_num_threads(1)
import ser_kit.wav2vec2 as w


def _tone(f0, amp=0.3, seconds=1.2, seed=0):
    t = np.arange(int(16000 * seconds)) / 16000
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (amp * np.sin(2 * np.pi * f0 * t) + noise).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    "18 RAVDESS-named float WAVs: 3 actors x 3 emotions (neutral, happy, sad) x 2, each a distinct tone."
    rows = []
    for a in (1, 2, 3):
        d = tmp_path / 'corpus' / f'Actor_{a:02d}'; d.mkdir(parents=True)
        for code, emo, f0 in (('01', 'neutral', 120.0), ('03', 'happy', 260.0), ('04', 'sad', 90.0)):
            for k in (1, 2):
                p = d / f'03-01-{code}-01-01-{k:02d}-{a:02d}.wav'
                sf.write(p, _tone(f0 + 7 * a + 3 * k, seed=a * 10 + k), 16000, subtype='FLOAT')
                rows.append(dict(path=str(p), corpus='ravdess', speaker=f'{a:02d}', emotion=emo, gender='male'))
    return pd.DataFrame(rows)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))
    return tmp_path / 'cache'


def _cache_warnings(ws): return [x for x in ws if issubclass(x.category, CacheWarning)]


# --- the Wav2Vec2 embedding cache keys on content -----------------------------------------------------------------

def test_embeddings_change_when_content_changes_but_size_and_mtime_do_not(corpus, cache):
    paths = list(corpus.path[:4])
    E1, _ = w.extract_embeddings(paths, w.TINY, progress=False)
    p = Path(paths[1]); st = os.stat(p)
    sf.write(p, _tone(400.0, amp=0.5, seed=99), 16000, subtype='FLOAT')   # other audio, the same length
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))                     # as `cp -p` and `rsync -t` leave it
    assert os.stat(p).st_size == st.st_size and os.stat(p).st_mtime_ns == st.st_mtime_ns
    E2, _ = w.extract_embeddings(paths, w.TINY, progress=False)
    fresh, _ = w.extract_embeddings([p], w.TINY, progress=False, cache=False)
    np.testing.assert_allclose(E2[1], fresh[0], atol=1e-5)               # the new audio, not the stale entry
    assert not np.allclose(E1[1], E2[1])
    np.testing.assert_array_equal(E1[[0, 2, 3]], E2[[0, 2, 3]])           # the others still come from the cache


def test_a_touched_or_copied_file_is_still_a_hit(corpus, cache, tmp_path, monkeypatch):
    paths = list(corpus.path[:3]); w.extract_embeddings(paths, w.TINY, progress=False)
    os.utime(paths[0]); copy = tmp_path / 'copy.wav'; copy.write_bytes(Path(paths[1]).read_bytes())
    monkeypatch.setattr(w, 'embed_batch', lambda *a, **k: pytest.fail('recomputed a cached file'))
    w.extract_embeddings([paths[0], str(copy)], w.TINY, progress=False)


# --- a cache that cannot be used: run without it, one warning --------------------------------------------------------

@pytest.mark.parametrize('how', ['cache is a file', 'entries are folders', 'writes fail'])
def test_broken_embeddings_cache_runs_without_it_and_warns_once(corpus, cache, monkeypatch, how):
    paths = list(corpus.path[:6])
    ref, _ = w.extract_embeddings(paths, w.TINY, progress=False, cache=False)
    if how == 'cache is a file':
        cache.parent.mkdir(exist_ok=True); cache.write_text('not a folder')
    elif how == 'entries are folders':
        w.extract_embeddings(paths, w.TINY, progress=False)
        for f in cache.rglob('*.npy'): f.unlink(); f.mkdir()
    else:
        def refuse(dest, write): raise OSError(30, 'Read-only file system', str(dest))
        monkeypatch.setattr(w, 'atomic_write', refuse)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        E, idx = w.extract_embeddings(paths, w.TINY, progress=False, batch_size=2)   # three batches: still one warning
    np.testing.assert_allclose(E, ref, atol=1e-5); assert list(idx) == list(range(6))
    cw = _cache_warnings(ws); assert len(cw) == 1, [str(x.message) for x in ws]
    assert cw[0].filename == __file__                                    # at the caller's line
    if how == 'cache is a file': assert cache.read_text() == 'not a folder'


def test_an_unreadable_file_is_skipped_not_cached(corpus, cache, monkeypatch):
    paths = list(corpus.path[:3])
    real = w.content_hash
    monkeypatch.setattr(w, 'content_hash', lambda p: (_ for _ in ()).throw(PermissionError(13, 'denied'))
                        if p == paths[0] else real(p))
    E, idx = w.extract_embeddings(paths, w.TINY, progress=False)          # hashing failed: computed, not cached
    assert list(idx) == [0, 1, 2] and len(list(cache.rglob('*.npy'))) == 2


# --- Wav2Vec2 training drops a class without a readable clip --------------------------------------------------------

def test_wav2vec2_drops_a_class_whose_every_clip_is_unreadable(corpus, cache):
    for p in corpus[corpus.emotion == 'sad'].path: Path(p).write_bytes(b'RIFF' + b'\0' * 40)   # every sad clip broken
    with pytest.warns(UserWarning, match="no readable training clip of 'sad'"):
        rec = w.Wav2Vec2Recognizer(w.TINY, epochs=1, lr=1e-3, batch_size=4).fit(corpus)
    assert rec.labels == ['neutral', 'happy'] and rec.model_.config.num_labels == 2
    assert rec.model_.config.id2label == {0: 'neutral', 1: 'happy'}
    assert rec.class_counts_.to_dict() == {'neutral': 6, 'happy': 6}
    assert set(rec.predict(list(corpus[corpus.emotion != 'sad'].path[:3]))) <= {'neutral', 'happy'}


def test_wav2vec2_refuses_when_fewer_than_two_classes_remain(corpus, cache):
    for p in corpus[corpus.emotion != 'sad'].path: Path(p).write_bytes(b'')
    with pytest.raises(SettingError, match='at least two emotions'), warnings.catch_warnings():
        warnings.simplefilter('ignore'); w.Wav2Vec2Recognizer(w.TINY, epochs=1).fit(corpus)


# --- the offline fallback: the hub is asked once, the line said once -------------------------------------------------

def test_hub_is_asked_once_and_the_fallback_said_once(monkeypatch, capsys):
    import transformers
    w.load_backbone('tiny'); capsys.readouterr()
    monkeypatch.setattr(w, '_tiny_notice_said', False); monkeypatch.setattr(w, '_hub_missing', {})
    monkeypatch.setattr(w, 'hub_reachable', lambda *a, **k: True)        # a network that does not serve the model
    asked = []
    def from_pretrained(cls, where, local_files_only=False, **kw):
        if not local_files_only: asked.append(where); print('Retrying in 1s [Retry 1/5]', file=sys.stderr)
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {where}")
    monkeypatch.setattr(transformers.AutoModelForAudioClassification, 'from_pretrained', classmethod(from_pretrained))
    for _ in range(4): m = w.load_backbone(None, labels=['angry', 'sad'])   # a 4-fold cross-validation's models
    out = capsys.readouterr()
    assert asked == [w.DEFAULT_CHECKPOINT] and out.err.count('Retrying') == 1
    assert out.out.count('scores mean nothing') == 1 and m.ser_kit_origin['kind'] == 'tiny'


# --- SER_KIT_CACHE that cannot be used: the demo corpus and the default model still work -----------------------------

@pytest.fixture
def cache_is_a_file(tmp_path, monkeypatch):
    "SER_KIT_CACHE names a file; the temporary folder is private to the test; nothing warned about yet."
    f = tmp_path / 'cachefile'; f.write_text('mine')
    monkeypatch.setenv('SER_KIT_CACHE', str(f))
    (tmp_path / 'tmp').mkdir(); monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))
    monkeypatch.setattr(D, '_FALLBACK_SAID', set())
    return f


def test_demo_corpus_with_a_cache_that_is_a_file(cache_is_a_file, tmp_path):
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        d = make_demo_corpus(n_actors=1, n_jobs=1); d2 = make_demo_corpus(n_actors=1, n_jobs=1)
    assert d == d2 and d.is_relative_to(tmp_path / 'tmp') and len(list(d.rglob('*.wav'))) == 60
    cw = _cache_warnings(ws); assert len(cw) == 1 and 'SER_KIT_CACHE' in str(cw[0].message)
    assert cw[0].filename == __file__
    assert cache_is_a_file.read_text() == 'mine'


def test_cache_dir_itself_stays_strict(cache_is_a_file):
    with pytest.raises(OSError): D.cache_dir('x')


def test_private_temp_folder_is_never_someone_elses(cache_is_a_file, tmp_path):
    if not hasattr(os, 'getuid'): pytest.skip('POSIX only')
    other = tmp_path / 'elsewhere'; other.mkdir()
    (tmp_path / 'tmp' / f'ser_kit-cache-{os.getuid()}').symlink_to(other)   # planted by someone else
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); d = writable_cache_dir('models')
    assert not d.resolve().is_relative_to(other.resolve()) and d.is_dir()


def test_default_listen_model_with_a_cache_that_is_a_file(cache_is_a_file, tmp_path, monkeypatch):
    from ser_kit import listen as L
    import ser_kit.classical as C
    class Fake:
        def __init__(self, **kw): pass
        def fit(self, m): return self
        def save(self, p): p.write_bytes(b'model'); return p
    monkeypatch.setattr(C, 'EmotionRecognizer', Fake)
    monkeypatch.setattr('ser_kit.data.make_demo_corpus', lambda **kw: 'demo')
    monkeypatch.setattr('ser_kit.data.load_corpus', lambda src: [1, 2])
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always'); p = L.default_model(out=io.StringIO())
    assert p.read_bytes() == b'model' and p.is_relative_to(tmp_path / 'tmp')
    assert len(_cache_warnings(ws)) == 1 and cache_is_a_file.read_text() == 'mine'


# --- folder scans report what they leave out (library as CLI) --------------------------------------------------------

def test_expand_inputs_reports_what_a_folder_scan_left_out(tmp_path):
    (tmp_path / 'a.wav').touch(); (tmp_path / os.fsdecode(b'caf\xe9.wav')).touch()
    locked = tmp_path / 'speaker2'; locked.mkdir(); (locked / 'b.wav').touch(); locked.chmod(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')                                # reported in the table, not as a warning
            files, left = expand_inputs([tmp_path, tmp_path / 'empty_dir_missing'])
    finally: locked.chmod(0o755)
    reasons = dict(zip(left.path, left.error))
    assert any('not valid UTF-8' in r for r in reasons.values())
    assert reasons[str(tmp_path / 'empty_dir_missing')] == 'no such file or folder'
    if os.geteuid() != 0: assert any('cannot be read' in r for r in reasons.values())   # root reads any folder
    assert Path(files[0]).name == 'a.wav'


# --- warnings point at the caller's line ------------------------------------------------------------------------------

def _odd_corpus(tmp_path):
    d = tmp_path / 'odd' / 'Actor_01'; d.mkdir(parents=True)
    (d / '03-01-01-01-01-01-01.wav').touch(); (d / 'notes.wav').touch()
    return d.parent


@pytest.mark.parametrize('call', [load_corpus, load_ravdess, lambda p: get_corpus(p, quiet=True)])
def test_skipped_files_warning_points_at_the_callers_line(tmp_path, call):
    src = _odd_corpus(tmp_path)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always'); call(src)
    assert len(ws) == 1 and 'skipped 1 file' in str(ws[0].message)
    assert ws[0].filename == __file__, ws[0].filename


# --- the corpus browser: shown once, says when no clip matches -------------------------------------------------------

@pytest.fixture
def live(monkeypatch):
    "A live front-end; every `display` call counted; every clip shown recorded; every clearing of the output recorded."
    W = pytest.importorskip('ipywidgets')
    import IPython.display
    shown, clips, cleared = [], [], []
    monkeypatch.setattr(D, 'interactive_frontend', lambda: True)
    monkeypatch.setattr(IPython.display, 'display', lambda *o, **k: shown.extend(o))
    monkeypatch.setattr(D, '_show_clip', lambda path, label, sr=16000: clips.append(path))
    monkeypatch.setattr(W.Output, 'clear_output', lambda self, wait=False: cleared.append(wait))
    return shown, clips, cleared


def _manifest():
    rows = [('01', 'neutral', 'normal'), ('01', 'calm', 'strong'), ('02', 'neutral', 'normal'),
            ('02', 'calm', 'normal')]
    return pd.DataFrame([dict(path=f'/c/clip{i}.wav', speaker=s, emotion=e, intensity=n, gender='male')
                         for i, (s, e, n) in enumerate(rows)])


def test_corpus_browser_is_shown_once(live):
    import ipywidgets as W
    shown, _, _ = live
    ui = D.corpus_browser(_manifest())
    assert isinstance(ui, W.VBox) and not any(isinstance(o, W.Widget) for o in shown)   # the cell's value, once


def test_corpus_browser_empty_filter_says_so_and_clears_the_clip(live):
    shown, clips, cleared = live
    ui = D.corpus_browser(_manifest())
    dd = {d.description: d for d in ui.children[0].children + ui.children[1].children}
    status, pick = ui.children[2], ui.children[3]
    dd['emotion'].value = 'neutral'; assert len(pick.options) == 2
    pick.value = pick.options[0][1]; assert clips == ['/c/clip0.wav']
    cleared.clear()
    dd['intensity'].value = 'strong'                                     # no strong neutral
    assert pick.options == () and pick.value is None
    assert 'no clips match' in status.value
    assert cleared == [False]                                   # cleared at once, not "when the next one comes"
    dd['intensity'].value = 'all'; assert '2 clip' in status.value


def test_corpus_browser_static_with_no_clip_says_so(monkeypatch, capsys):
    import IPython.display
    monkeypatch.setattr(IPython.display, 'display', lambda *o, **k: None)
    assert D.corpus_browser(_manifest().iloc[:0], static=True) is None
    assert 'no clips match' in capsys.readouterr().out
