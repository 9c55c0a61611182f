"Corpus parsers, audio loading and its failure modes, the demo corpus, and speaker-independent folds."
import hashlib, os, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf
from ser_kit.data import *
from ser_kit.data import _kaggle_corpus
from conftest import real_data


def touch_all(root, names):
    for n in names:
        p = Path(root) / n; p.parent.mkdir(parents=True, exist_ok=True); p.touch()
    return Path(root)


# ---- names and parsers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name,field,value', [
    ('03-01-06-01-02-01-12.wav', 'emotion', 'fearful'), ('03-01-06-01-02-01-12.wav', 'gender', 'female'),
    ('03-02-05-02-01-02-01.wav', 'vocal_channel', 'song'), ('03-01-08-02-02-02-24.wav', 'intensity', 'strong'),
    ('01-01-02-01-01-01-07.wav', 'modality', 'audio-video'), ('03-01-01-01-02-02-03.wav', 'statement', 2)])
def test_parse_ravdess_fields(name, field, value):
    assert parse_ravdess(name)[field] == value


@pytest.mark.parametrize('name,msg', [
    ('03-01-09-01-01-01-01.wav', 'emotion'), ('03-01-01-02-01-01-01.wav', 'neutral has no strong'),
    ('03-01-05-01-01-01-00.wav', 'actor'), ('04-01-05-01-01-01-01.wav', 'modality'), ('03-03-05-01-01-01-01.wav', 'vocal_channel'),
    ('03-01-05-03-01-01-01.wav', 'intensity'), ('03-01-05-01-03-01-01.wav', 'statement'), ('03-01-05-01-01-03-01.wav', 'repetition'),
    ('03-02-08-01-01-01-01.wav', 'songs have no'), ('3-1-5-1-1-1-1.wav', 'not a RAVDESS name'), ('readme.wav', 'not a RAVDESS name')])
def test_parse_ravdess_rejects_with_file_name(name, msg):
    with pytest.raises(BadFilenameError) as e: parse_ravdess(f'/data/{name}')
    assert name in str(e.value) and msg in str(e.value)


def test_every_loader_and_detection(tmp_path):
    cases = {
        'ravdess': (['Actor_01/03-01-01-01-01-01-01.wav', 'Actor_02/03-01-03-02-01-01-02.wav'], ['neutral', 'happy'], ['01', '02']),
        'emodb': (['wav/03a01Wa.wav', 'wav/14b10Lc.wav'], ['angry', 'boredom'], ['03', '14']),
        'tess': (['OAF_angry/OAF_back_angry.wav', 'YAF_pleasant_surprised/YAF_bite_ps.wav'], ['angry', 'surprised'], ['OAF', 'YAF']),
        'cremad': (['AudioWAV/1001_DFA_ANG_XX.wav', 'AudioWAV/1002_IEO_FEA_HI.wav'], ['angry', 'fearful'], ['1001', '1002']),
        'savee': (['ALL/DC_a01.wav', 'ALL/JK_su05.wav'], ['angry', 'surprised'], ['DC', 'JK']),
        'custom': (['me/x_happy.wav', 'you/y_sadness.wav'], ['happy', 'sad'], ['me', 'you'])}
    for corpus, (names, emos, spks) in cases.items():
        d = touch_all(tmp_path / corpus, names)
        assert detect_corpus(d) == corpus
        df = load_corpus(d)
        assert list(df.columns[:5]) == ['path', 'corpus', 'speaker', 'emotion', 'gender']
        assert df.corpus.tolist() == [corpus] * 2 and df.emotion.tolist() == emos and df.speaker.tolist() == spks
        assert set(df.emotion) <= set(EMOTIONS)


def test_cremad_gender_from_demographics(tmp_path):
    d = touch_all(tmp_path, ['AudioWAV/1001_DFA_ANG_XX.wav', 'AudioWAV/1002_DFA_SAD_XX.wav'])
    pd.DataFrame(dict(ActorID=[1001, 1002], Sex=['Male', 'Female'])).to_csv(d / 'VideoDemographics.csv', index=False)
    assert load_cremad(d).gender.tolist() == ['male', 'female']


def test_batch_skips_and_reports_bad_names(tmp_path):
    d = touch_all(tmp_path, ['Actor_01/03-01-01-01-01-01-01.wav', 'Actor_01/03-01-09-01-01-01-01.wav', 'Actor_01/copy.wav'])
    with pytest.warns(UserWarning, match='skipped 2'): df = load_ravdess(d)
    assert len(df) == 1 and len(df.attrs['skipped']) == 2
    assert any('03-01-09-01-01-01-01.wav' in s and 'emotion' in s for s in df.attrs['skipped'])


def test_kaggle_layout_and_discovery(tmp_path, monkeypatch):
    k = touch_all(tmp_path / 'input', ['ravdess-emotional-speech-audio/Actor_01/03-01-01-01-01-01-01.wav',
                                       'ravdess-emotional-speech-audio/audio_speech_actors_01-24/Actor_01/03-01-01-01-01-01-01.wav',
                                       'toronto-emotional-speech-set-tess/OAF_angry/OAF_back_angry.wav'])
    assert _kaggle_corpus(k) == k / 'ravdess-emotional-speech-audio'
    assert len(load_corpus(k / 'ravdess-emotional-speech-audio')) == 1  # duplicate copy kept once
    monkeypatch.chdir(tmp_path); monkeypatch.delenv('SER_KIT_DATA', raising=False)
    monkeypatch.setattr('ser_kit.data.KAGGLE_INPUT', k)
    assert find_data() == k / 'ravdess-emotional-speech-audio'
    monkeypatch.setenv('SER_KIT_DATA', str(tmp_path / 'elsewhere'))
    assert find_data() == tmp_path / 'elsewhere' and find_data('/explicit') == Path('/explicit')


def test_manifest_csv_roundtrip_and_errors(tmp_path):
    d = touch_all(tmp_path / 'c', ['wav/03a01Wa.wav', 'wav/14b10Lc.wav'])
    df = load_corpus(d); df.to_csv(tmp_path / 'm.csv', index=False)
    back = load_corpus(tmp_path / 'm.csv')
    assert back.path.tolist() == df.path.tolist() and back.speaker.tolist() == ['03', '14']
    pd.DataFrame(dict(path=['wav/a.wav'], speaker=['1'], emotion=['Anger'])).to_csv(tmp_path / 'rel.csv', index=False)
    rel = load_corpus(tmp_path / 'rel.csv')
    assert rel.path[0] == str(tmp_path / 'wav' / 'a.wav') and rel.emotion[0] == 'angry'
    pd.DataFrame(dict(path=['a.wav'], speaker=['1'])).to_csv(tmp_path / 'bad.csv', index=False)
    with pytest.raises(ValueError, match='bad.csv.*emotion'): load_corpus(tmp_path / 'bad.csv')


# ---- audio ---------------------------------------------------------------------------------------------------------
TONE = (0.4 * np.sin(2 * np.pi * 200 * np.arange(48000) / 48000)).astype('float32')


@pytest.mark.parametrize('fmt,subtype,sr,ext', [
    ('WAV', 'PCM_U8', 8000, 'wav'), ('WAV', 'PCM_16', 48000, 'wav'), ('WAV', 'PCM_24', 96000, 'wav'), ('WAV', 'FLOAT', 22050, 'wav'),
    ('FLAC', 'PCM_16', 44100, 'flac'), ('OGG', 'VORBIS', 16000, 'ogg'), ('MP3', 'MPEG_LAYER_III', 16000, 'mp3'), ('AIFF', 'PCM_16', 44100, 'wav')])
def test_load_audio_formats(tmp_path, fmt, subtype, sr, ext):
    y0 = TONE[:sr] if sr <= 48000 else np.tile(TONE, 2)[:sr]
    p = tmp_path / f'x.{ext}'; sf.write(p, np.stack([y0, y0], 1), sr, format=fmt, subtype=subtype)  # stereo, 1 s
    y = load_audio(p)
    assert y.dtype == np.float32 and y.ndim == 1 and abs(len(y) - 16000) < 800 and 0.2 < np.abs(y).max() < 0.6


def test_load_audio_offset_duration_resample(tmp_path):
    p = tmp_path / 'a.wav'; sf.write(p, np.tile(TONE, 3), 48000)
    assert len(load_audio(p, offset=0.6, duration=2.0)) == 32000
    assert len(load_audio(p, sr=8000)) == 24000


def _bad_files(d):
    d = Path(d); raw = (sf.write(d / 'ok.wav', TONE, 48000), (d / 'ok.wav').read_bytes())[1]
    (d / 'empty.wav').touch(); (d / 'text.wav').write_text('not audio at all')
    (d / 'truncated.wav').write_bytes(raw[:len(raw) // 3]); (d / 'header.wav').write_bytes(raw[:44])
    sf.write(d / 'silent.wav', np.zeros(16000, 'float32'), 16000); sf.write(d / 'short.wav', TONE[:200], 48000)
    return {'missing.wav': AudioFileNotFoundError, 'empty.wav': EmptyAudioError, 'text.wav': CorruptAudioError,
            'truncated.wav': CorruptAudioError, 'header.wav': CorruptAudioError, 'silent.wav': SilentAudioError,
            'short.wav': TooShortAudioError}


def test_each_bad_input_kind_raises_its_error_naming_the_file(tmp_path):
    for name, err in _bad_files(tmp_path).items():
        with pytest.raises(err) as e: load_audio(tmp_path / name)
        assert isinstance(e.value, AudioError) and str(tmp_path / name) in str(e.value)


def test_batch_check_skips_and_reports_bad_audio(tmp_path):
    kinds = _bad_files(tmp_path)
    m = pd.DataFrame(dict(path=[str(tmp_path / n) for n in ['ok.wav', *kinds]], speaker='1', emotion='sad'))
    good, bad = check_audio(m)
    assert good.path.tolist() == [str(tmp_path / 'ok.wav')] and good.duration.iloc[0] == pytest.approx(1.0)
    assert len(bad) == len(kinds) and bad.error.str.len().min() > 5


def test_pad_crop_and_trim():
    y = np.arange(100, dtype='float32')
    assert len(pad_crop(y, 40)) == 40 and pad_crop(y, 40)[0] == 30 and len(pad_crop(y, 130)) == 130
    a = pad_crop(y, 40, 'random', np.random.default_rng(1)); b = pad_crop(y, 40, 'random', np.random.default_rng(1))
    assert (a == b).all()
    x = np.concatenate([np.zeros(16000), TONE[:16000], np.zeros(16000)]).astype('float32')
    assert 15000 < len(trim_silence(x, 16000)) < 17000


# ---- demo corpus --------------------------------------------------------------------------------------------------
def _digest(d):
    h = hashlib.sha256()
    for p in sorted(Path(d).rglob('*.wav')): h.update(p.relative_to(d).as_posix().encode()); h.update(p.read_bytes())
    return h.hexdigest()


def test_demo_corpus_is_ravdess(demo_dir, demo):
    n = demo.speaker.nunique()
    assert len(demo) == 60 * n and demo.corpus.eq('ravdess').all()
    assert set(demo.emotion) == set(RAVDESS_EMOTIONS.values()) and set(demo.gender) == {'male', 'female'}
    assert set(demo.intensity) == {'normal', 'strong'} and not ((demo.emotion == 'neutral') & (demo.intensity == 'strong')).any()
    assert all(Path(p).parent.name == f'Actor_{int(Path(p).stem[-2:]):02d}' for p in demo.path)
    info = sf.info(demo.path[0]); assert info.samplerate == 16000 and info.channels == 1
    good, bad = check_audio(demo.iloc[::7]); assert len(bad) == 0


def test_demo_corpus_deterministic_and_cached(tmp_path):
    a = make_demo_corpus(tmp_path / 'a', n_actors=2, seed=1); b = make_demo_corpus(tmp_path / 'b', n_actors=2, seed=1)
    assert _digest(a) == _digest(b)
    assert _digest(make_demo_corpus(tmp_path / 'c', n_actors=2, seed=2)) != _digest(a)
    t = time.perf_counter(); assert make_demo_corpus(tmp_path / 'a', n_actors=2, seed=1) == a
    assert time.perf_counter() - t < 1.0  # the second call finds the finished corpus and returns at once


def test_demo_corpus_rejects_bad_arguments(tmp_path):
    for kw in (dict(n_actors=0), dict(n_actors=25)):
        with pytest.raises(ValueError, match='n_actors'): make_demo_corpus(tmp_path / 'x', **kw)


# ---- folds --------------------------------------------------------------------------------------------------------
def test_speaker_folds_never_share_a_speaker(demo):
    for k in (2, 4, demo.speaker.nunique()):
        folds = speaker_folds(demo, k)
        assert len(folds) == k and sorted(np.concatenate([te for _, te in folds])) == list(range(len(demo)))
        for tr, te in folds:
            assert shared_speakers(demo, tr, te) == set() and not set(demo.speaker.iloc[tr]) & set(demo.speaker.iloc[te])


EMOBOX = [[1, 11, 20, 21], [4, 10, 12, 14], [8, 9, 19, 23], [3, 5, 7, 24], [2, 15, 16, 18], [6, 13, 17, 22]]


def _actors(n, per=3):
    return pd.DataFrame([dict(path=f'{a}-{i}.wav', speaker=f'{a:02d}', emotion='sad') for a in range(1, n + 1)
                         for i in range(per)])


def _test_actors(df):
    return [sorted(set(df.speaker.iloc[te].astype(int))) for _, te in emobox_folds(df)]


def test_emobox_folds_are_the_published_list():
    df = _actors(24)
    assert [list(f) for f in EMOBOX_RAVDESS_FOLDS] == EMOBOX and _test_actors(df) == EMOBOX
    for tr, te in emobox_folds(df):
        assert len(set(df.speaker.iloc[tr])) == 20 and shared_speakers(df, tr, te) == set()
        assert sorted(np.concatenate([tr, te])) == list(range(len(df)))


def test_emobox_folds_on_16_actors_keep_the_actors_present():
    df = _actors(16)
    assert _test_actors(df) == [[a for a in f if a <= 16] for f in EMOBOX]          # 6 folds, actors 1-16 only
    assert sorted(np.concatenate([te for _, te in emobox_folds(df)])) == list(range(len(df)))
    assert _test_actors(df[df.speaker.isin(['01', '04', '08'])]) == [[1], [4], [8]]   # absent folds are left out
    with pytest.raises(SettingError, match='at least two EmoBox folds'): emobox_folds(df[df.speaker == '01'])
    with pytest.raises(SettingError, match='RAVDESS actors'): emobox_folds(df.assign(speaker='anna'))


def test_emobox_folds_on_the_demo_corpus(demo):
    folds = emobox_folds(demo)
    assert [sorted(set(demo.actor.iloc[te])) for _, te in folds] == [[1], [4], [8], [3, 5, 7], [2], [6]]
    tr, te = leaky_random_split(demo)
    assert shared_speakers(demo, tr, te) and len(tr) + len(te) == len(demo)


# ---- speakers found from the files themselves ------------------------------------------------------------------------
@pytest.mark.parametrize('path,speaker,corpus', [
    ('x/Actor_12/03-01-06-01-02-01-12.wav', '12', 'ravdess'), ('somewhere/03-02-05-02-01-02-07.wav', '07', 'ravdess'),
    ('OAF_angry/OAF_back_angry.wav', 'OAF', 'tess'), ('YAF_pleasant_surprised/YAF_bite_ps.wav', 'YAF', 'tess'),
    ('wav/03a01Fa.wav', '03', 'emodb'), ('wav/16b10Lc.wav', '16', 'emodb'),
    ('AudioWAV/1001_DFA_ANG_XX.wav', '1001', 'cremad'), ('1091_IEO_SAD_HI.wav', '1091', 'cremad'),
    ('ALL/DC_sa03.wav', 'DC', 'savee'), ('AudioData/JK/su15.wav', 'JK', 'savee')])
def test_speaker_from_each_corpus_naming(path, speaker, corpus):
    assert speaker_from_name(path) == (speaker, corpus)
    t = find_speakers([path])
    assert t.speaker.tolist() == [speaker] and t.speaker_from.tolist() == [f'{corpus} name']
    assert find_speakers([path], 'name').speaker.tolist() == [speaker]


def test_speaker_from_folder_when_the_name_says_nothing(tmp_path):
    paths = [tmp_path / 'anna' / 'take1.wav', tmp_path / 'anna' / 'take2_happy.wav', tmp_path / 'bob' / 'x.flac']
    assert speaker_from_name(paths[0]) is None and speaker_from_name(paths[1]) is None
    t = find_speakers(paths)
    assert t.path.tolist() == [str(p) for p in paths]
    assert t.speaker.tolist() == ['anna', 'anna', 'bob'] and set(t.speaker_from) == {'folder'}
    assert find_speakers(['Actor_01/03-01-05-01-01-01-02.wav'], 'folder').speaker.tolist() == ['Actor_01']
    assert find_speakers(paths, 'name').speaker.tolist() == ['?0', '?1', '?2']        # no corpus name: unknown


def test_speakers_none_and_mixed_sources():
    paths = ['a/03-01-05-01-01-01-03.wav', 'b/03-01-05-01-01-01-03.wav', 'wav/03a01Fa.wav', 'me/anna/x.wav']
    t = find_speakers(paths)
    assert t.speaker.tolist() == ['ravdess:03', 'ravdess:03', 'emodb:03', 'anna']     # actor 03 is not EMO-DB's 03
    n = find_speakers(paths, 'none')
    assert n.speaker.tolist() == ['?0', '?1', '?2', '?3'] and set(n.speaker_from) == {'none'}
    with pytest.raises(SettingError, match="not 'voices'"): find_speakers(paths, 'voices')
    assert len(find_speakers([])) == 0


def test_speakers_from_a_manifest_come_first(tmp_path):
    man = pd.DataFrame(dict(path=['a/03-01-05-01-01-01-03.wav', 'me/x.wav'], speaker=['alice', 'bob'], corpus='custom'))
    t = find_speakers(list(man.path) + ['c/03-01-05-01-01-01-04.wav'], known=man)
    assert t.speaker.tolist() == ['alice', 'bob', '04']
    assert t.speaker_from.tolist() == ['manifest', 'manifest', 'ravdess name']
    assert find_speakers(man.path, 'folder', known=man).speaker.tolist() == ['a', 'me']   # an explicit choice overrides


def test_real_ravdess_when_present():
    df = load_corpus(real_data('ravdess-dev'))
    assert len(df) == 960 and df.speaker.nunique() == 16 and df.emotion.nunique() == 8
    assert len(load_corpus(real_data('emodb'))) == 535
    y = load_audio(next(real_data('ravdess-dev-48k').rglob('*.wav'))); assert y.dtype == np.float32


@pytest.mark.parametrize('subtype', ['PCM_16', 'PCM_24', 'FLOAT'])
def test_decoding_equals_libsndfile_for_every_subtype(tmp_path, subtype):
    # 16-bit PCM is scaled by numpy (faster than libsndfile's conversion): it must give the very same samples
    y = (np.random.default_rng(0).uniform(-0.9, 0.9, (3000, 2))).astype(np.float32)
    p = tmp_path / f'{subtype}.wav'; sf.write(p, y, 16000, subtype=subtype)
    ref = sf.read(p, dtype='float32')[0].mean(axis=1).astype(np.float32)
    centred = lambda r: r - np.float32(r.mean(dtype=np.float64))      # loading removes each clip's DC offset
    np.testing.assert_array_equal(load_audio(p, sr=None), centred(ref))
    np.testing.assert_array_equal(load_audio(p, sr=None, offset=0.05, duration=0.1), centred(ref[800:2400]))


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_corrupt_whatever_the_sign(tmp_path, bad):
    y = np.zeros(1600, np.float32); y[:800] = 0.1; y[700] = bad
    p = tmp_path / 'bad.wav'; sf.write(p, y, 16000, subtype='FLOAT')
    with pytest.raises(CorruptAudioError, match='NaN or infinity'): load_audio(p)
