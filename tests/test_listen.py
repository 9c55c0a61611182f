"""ser_kit.listen: the speech detector driven by recorded audio (never a device), the no-microphone path, and prediction."""
import io, sys, types
from pathlib import Path
import numpy as np
import pytest
from ser_kit.data import load_audio, trim_silence
from ser_kit.listen import (SpeechDetector, make_stream, feed_in_blocks, predict_audio, format_prediction, run_stream,
                            listen, decode_audio_bytes)
from ser_kit.cli import listen_command
from ser_kit.listen import NoMicrophoneError

SR = 16000


def noise(sec, db, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(sec * SR)) * 10 ** (db / 20)).astype(np.float32)


@pytest.fixture(scope='module')
def stream(demo):
    "Eight demo clips with random gaps over a -55 dBFS noise bed, and where speech truly is."
    return make_stream(demo.sample(8, random_state=3).path, noise_db=-55, seed=3)


@pytest.fixture(scope='module')
def model(demo):
    "A small classical model on two actors (fast), standing in for any Recognizer."
    from ser_kit.classical import EmotionRecognizer
    return EmotionRecognizer(n_jobs=1).fit(demo[demo.speaker.isin(['01', '02'])])


@pytest.mark.parametrize('max_block', [1, 37, 4000, 48000])
def test_detector_finds_each_utterance(stream, max_block):
    x, truth = stream
    if max_block == 1:  # one sample at a time is slow in Python: the first utterance only
        x, truth = x[:int((truth[0][1] + 0.8) * SR)], truth[:1]
    found = feed_in_blocks(SpeechDetector(), x, max_block=max_block, seed=max_block)
    assert len(found) == len(truth), (found, truth)
    for (a, b), u in zip(truth, found):
        assert abs(u.start - a) < 0.15 and abs(u.end - b) < 0.25, (a, b, u)
        assert len(u.audio) / SR >= u.duration  # audio covers the utterance (plus pre-roll and a short tail)


def test_detector_block_size_does_not_matter(stream):
    x, _ = stream
    a = [(u.start, u.end) for u in feed_in_blocks(SpeechDetector(), x, max_block=300, seed=1)]
    b = [(u.start, u.end) for u in feed_in_blocks(SpeechDetector(), x, max_block=30000, seed=2)]
    assert a == b


@pytest.mark.parametrize('noise_db', [-70, -45])  # demo speech frames peak near -26 dBFS
def test_detector_other_noise_levels(demo, noise_db):
    x, truth = make_stream(demo.path[:3], noise_db=noise_db, seed=1)
    assert len(feed_in_blocks(SpeechDetector(), x)) == len(truth) == 3


def test_detector_other_sample_rate_and_stereo(demo):
    y = load_audio(demo.path.iloc[0], sr=48000)
    x = np.concatenate([np.zeros(48000, np.float32), y, np.zeros(48000, np.float32)])
    x = x + np.random.default_rng(0).standard_normal(len(x)).astype(np.float32) * 10 ** (-60 / 20)
    found = feed_in_blocks(SpeechDetector(sr=48000), np.stack([x, x], 1), max_block=4800)
    assert len(found) == 1 and 1.2 < found[0].start < 1.8 and found[0].sr == 48000


def test_detector_ignores_clicks_silence_and_a_fan(demo):
    click = np.concatenate([noise(1, -60), noise(0.1, -20, 1), noise(1.5, -60, 2)])
    assert feed_in_blocks(SpeechDetector(), click) == []
    assert feed_in_blocks(SpeechDetector(), np.zeros(3 * SR, np.float32)) == []
    y = load_audio(demo.path.iloc[0])
    fan = np.concatenate([noise(1, -65), noise(20, -45, 1), y + noise(len(y) / SR, -45, 2), noise(2, -45, 3)])
    got = feed_in_blocks(SpeechDetector(), fan)
    assert len(got) == 1 and 21 < got[0].start < 22.2, got


def test_detector_cuts_long_speech(demo):
    talk = np.concatenate([noise(1, -60)] + [trim_silence(load_audio(p), SR) for p in demo.path[:6]] + [noise(1, -60, 1)])
    pieces = feed_in_blocks(SpeechDetector(max_speech=4.0), talk + noise(len(talk) / SR, -60, 2))
    assert len(pieces) >= 3 and max(u.duration for u in pieces) <= 4.0 + 0.03


def test_detector_flush_and_bad_settings():
    d = SpeechDetector()
    d.feed(noise(1, -60)); assert d.feed(noise(1, -20, 1)) == [] and d.in_speech
    [u] = d.flush(); assert not d.in_speech and 0.95 < u.start < 1.05
    for kw, msg in [(dict(min_speech=2, max_speech=1), 'min_speech'), (dict(start_db=5, stop_db=9), 'stop_db'), (dict(sr=0), 'sr')]:
        with pytest.raises(ValueError, match=msg): SpeechDetector(**kw)
    with pytest.raises(ValueError, match='1-D'): SpeechDetector().feed(np.zeros((2, 2, 2)))


def test_prediction_on_a_detected_utterance(stream, model):
    x, truth = stream
    u = feed_in_blocks(SpeechDetector(), x)[0]
    p = predict_audio(model, u.audio, u.sr)
    assert set(p) == set(model.labels) and abs(sum(p.values()) - 1) < 1e-4
    assert format_prediction(p).count('·') == 2
    with pytest.raises(ValueError, match='silen'): predict_audio(model, np.zeros(SR, np.float32))
    out = io.StringIO()
    res = run_stream((x[i:i + 1600] for i in range(0, len(x), 1600)), model, SpeechDetector(), out=out)
    assert len(res) == len(truth) == len(out.getvalue().splitlines())


def test_upload_bytes(demo, tmp_path):
    import soundfile as sf
    y = load_audio(demo.path.iloc[0])
    f = tmp_path / 'x.flac'; sf.write(f, np.stack([y, y], 1), 44100)  # stereo FLAC at another rate
    z = decode_audio_bytes(f.read_bytes(), 'mine.flac')
    assert z.ndim == 1 and abs(len(z) - len(y) * 16000 / 44100) < 20
    with pytest.raises(ValueError, match='notes.wav'): decode_audio_bytes(b'not audio', 'notes.wav')


def _fake_sd(x=None, devices=True):
    class InputStream:  # delivers the whole recording at once, in the stream's block size
        def __init__(self, samplerate, channels, dtype, blocksize, device, callback): self.cb, self.bs = callback, blocksize
        def __enter__(self):
            for i in range(0, len(x), self.bs): self.cb(x[i:i + self.bs, None], self.bs, None, None)
            return self
        def __exit__(self, *a): pass
    def query_devices(device=None, kind=None):
        if not devices: raise ValueError('No input device matching None')
        return {'name': 'fake mic', 'max_input_channels': 1, 'default_samplerate': SR}
    return types.SimpleNamespace(InputStream=InputStream, query_devices=query_devices)


@pytest.mark.parametrize('sd', [None, 'no-device', 'broken'])
def test_no_microphone_says_so(monkeypatch, capsys, sd):
    if sd == 'broken':  # installed without PortAudio: importing raises OSError
        class Finder:
            def find_spec(self, name, *a):
                if name == 'sounddevice': raise OSError('PortAudio library not found')
        monkeypatch.delitem(sys.modules, 'sounddevice', raising=False)
        monkeypatch.setattr(sys, 'meta_path', [Finder()] + sys.meta_path)
    else: monkeypatch.setitem(sys.modules, 'sounddevice', None if sd is None else _fake_sd(devices=False))
    with pytest.raises(NoMicrophoneError, match=r'^no microphone found \('):
        listen_command(model='never-loaded.skops')          # fails before loading (or training) a model
    assert capsys.readouterr().out == ''


def test_listen_with_a_fake_microphone(monkeypatch, stream, model):
    x, truth = stream
    monkeypatch.setitem(sys.modules, 'sounddevice', _fake_sd(x))
    out = io.StringIO()
    assert listen(model, seconds=0.1, out=out) == 0  # recorded blocks are still used after the time is up
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('listening on fake mic') and len(lines) == 1 + len(truth)


def test_default_model_is_trained_once_and_cached(monkeypatch, tmp_path):
    from ser_kit import listen as L
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path))
    calls = []
    class Fake:
        def __init__(self, **kw): pass
        def fit(self, m): calls.append(len(m)); return self
        def save(self, p): p.write_bytes(b'model'); return p
    import ser_kit.classical as C
    monkeypatch.setattr(C, 'EmotionRecognizer', Fake)
    monkeypatch.setattr(L, 'DEFAULT_MODEL_NAME', 'm.skops')
    monkeypatch.setattr('ser_kit.data.make_demo_corpus', lambda **kw: 'demo')
    monkeypatch.setattr('ser_kit.data.load_corpus', lambda src: [1, 2, 3])
    out = io.StringIO()
    p = L.default_model(out=out); p2 = L.default_model(out=out)
    assert p == p2 and p.parent == tmp_path / 'models' and p.name.startswith('m-') and p.suffix == '.skops'
    assert p.read_bytes() == b'model' and calls == [3]                  # named by the feature set's key: never stale
    assert out.getvalue().count('\n') == 1 and 'demo corpus' in out.getvalue()


def test_listen_adapts_to_your_voice_after_a_few_utterances(demo):
    from ser_kit.classical import EmotionRecognizer
    from ser_kit.listen import YourVoice, ADAPT_AFTER
    from ser_kit.data import load_audio
    model = EmotionRecognizer(n_jobs=1).fit(demo[demo.speaker.isin(['01', '02', '03'])])
    voice = YourVoice(model); clips = [load_audio(p, sr=16000) for p in demo[demo.speaker == '04'].path[:ADAPT_AFTER + 2]]
    hows = [voice.predict(y)[1] for y in clips]
    assert hows[:ADAPT_AFTER] == ['training statistics'] * ADAPT_AFTER and hows[-1] == f'your voice, {ADAPT_AFTER + 2} utterances'
    plain = YourVoice(EmotionRecognizer(n_jobs=1, adapt=None).fit(demo[demo.speaker.isin(['01', '02'])]))
    assert plain.predict(clips[0])[1] == ''


def test_listen_refuses_a_dimensions_model_before_listening(tiny_corpus, tmp_path):
    from ser_kit.dimensions import DimensionRecognizer
    from ser_kit.listen import get_model
    from ser_kit.data import SettingError
    d = DimensionRecognizer(n_jobs=1, adapt=None).fit(tiny_corpus).save(tmp_path / 'dim')
    with pytest.raises(SettingError, match='predicts dimensions'): get_model(str(d))


def test_a_damaged_default_model_is_trained_again(monkeypatch, tmp_path):
    import ser_kit.listen as L
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path))
    made = []
    def fake_default(quiet=False, out=None):
        p = tmp_path / 'm.skops'
        if not p.exists(): p.write_bytes(b'garbage' if not made else b'x'); made.append(1)
        return p
    monkeypatch.setattr(L, 'default_model', fake_default)
    loads = []
    def fake_load(p):
        loads.append(Path(p).read_bytes())
        if Path(p).read_bytes() == b'garbage':
            from ser_kit.models import ModelFileError
            raise ModelFileError(p, 'not a readable ser_kit model file')
        class R: model_type = 'classical'
        return R()
    monkeypatch.setattr('ser_kit.models.load_model', fake_load)
    assert L.get_model().model_type == 'classical' and loads == [b'garbage', b'x'] and len(made) == 2
