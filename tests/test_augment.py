"Waveform augmentations: each does what it claims, reproducibly; the classical model trains on augmented copies only."
import zlib
import numpy as np, pytest
from ser_kit.augment import (AUGMENTS, augment_waveform, parse_augment, add_noise, gain, pitch, stretch, reverb, room_ir,
                             augment_featureset)
from ser_kit.data import SettingError, load_audio
from ser_kit.features import f0_track, get_featureset

SR = 16000


@pytest.fixture(scope='module')
def clip(demo):
    return load_audio(demo.path.iloc[0], sr=SR)


def snr_db(clean, noisy):
    return 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean((noisy - clean).astype(float) ** 2))


def test_names_are_the_contract():
    assert list(AUGMENTS) == ['noise', 'gain', 'pitch', 'stretch', 'reverb']


@pytest.mark.parametrize('color', ['white', 'pink'])
@pytest.mark.parametrize('target', [5.0, 20.0])
def test_noise_hits_the_snr(clip, color, target):
    assert abs(snr_db(clip, add_noise(clip, SR, 0, snr_db=target, color=color)) - target) < 0.05


def test_random_noise_is_10_to_30_db(clip):
    for seed in range(8):
        assert 10 - 0.05 <= snr_db(clip, augment_waveform(clip, SR, 'noise', seed)) <= 30 + 0.05


def test_pink_noise_is_pink():
    from ser_kit.augment import pink_noise
    x = pink_noise(2 ** 16, np.random.default_rng(0)); P = np.abs(np.fft.rfft(x)) ** 2; f = np.arange(len(P))
    lo, hi = P[(f > 100) & (f < 200)].mean(), P[(f > 1600) & (f < 3200)].mean()
    assert 10 * np.log10(lo / hi) > 9            # 4 octaves apart: about 12 dB for 1/f, 0 dB for white noise


def test_gain_in_db(clip):
    assert abs(20 * np.log10(np.abs(gain(clip, SR, 0, db=5)).max() / np.abs(clip).max()) - 5) < 1e-4
    for seed in range(8):
        g = 20 * np.log10(np.abs(augment_waveform(clip, SR, 'gain', seed)).max() / np.abs(clip).max())
        assert 1 - 1e-4 <= abs(g) <= 6 + 1e-4


@pytest.mark.parametrize('rate', [0.9, 1.1])
def test_stretch_length_ratio(clip, rate):
    assert abs(len(stretch(clip, SR, 0, rate=rate)) / len(clip) - 1 / rate) < 0.01


def test_random_stretch_within_10_percent(clip):
    for seed in range(4):
        r = len(augment_waveform(clip, SR, 'stretch', seed)) / len(clip)
        assert 1 / 1.1 - 0.01 <= r <= 1 / 0.9 + 0.01 and abs(r - 1) > 0.02


@pytest.mark.parametrize('steps', [2.0, -2.0])
def test_pitch_shift_moves_f0(steps):
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)).astype(np.float32)
    out = pitch(tone, SR, 0, semitones=steps)
    f0 = f0_track(out, SR)[0]
    assert len(out) == len(tone) and abs(np.median(f0[f0 > 0]) - 200 * 2 ** (steps / 12)) < 3


def test_reverb_keeps_length_and_level_and_adds_a_tail(clip):
    out = reverb(clip, SR, 0, rt60=0.5)
    assert len(out) == len(clip) and abs(np.sqrt(np.mean(out ** 2)) / np.sqrt(np.mean(clip ** 2)) - 1) < 1e-3
    click = np.zeros(SR, np.float32); click[100] = 1
    tail = reverb(click, SR, 0, rt60=0.5)
    assert np.abs(tail[100 + SR // 10:]).max() > 1e-3 and np.abs(tail[:100]).max() < 1e-6   # causal, with a tail
    ir = room_ir(SR, 0, rt60=0.5).astype(float)
    e = np.cumsum((ir[1:] ** 2)[::-1])[::-1]; db = 10 * np.log10(e / e[0]); i = (db < -5) & (db > -25)
    assert abs(-60 / np.polyfit(np.arange(len(db))[i] / SR, db[i], 1)[0] - 0.5) < 0.05   # RT60 as asked


@pytest.mark.parametrize('kind', list(AUGMENTS))
def test_every_kind_is_seeded_float32_and_changes_the_clip(clip, kind):
    a, b = augment_waveform(clip, SR, kind, 3), augment_waveform(clip, SR, kind, np.random.default_rng(3))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert 0.85 < len(a) / len(clip) < 1.15
    c = augment_waveform(clip, SR, kind, 4)
    assert len(a) != len(c) or not np.allclose(a, c)                       # another seed, another copy
    assert len(a) != len(clip) or not np.allclose(a, clip, atol=1e-4)       # the clip changed


def test_parse_augment():
    assert parse_augment('noise,gain') == ('noise', 'gain') and parse_augment(' reverb , pitch ') == ('reverb', 'pitch')
    assert parse_augment(None) == parse_augment('') == parse_augment('none') == parse_augment([]) == ()
    assert parse_augment(['gain', 'gain']) == ('gain',)
    with pytest.raises(SettingError, match="'echo'.*noise, gain, pitch, stretch, reverb"): parse_augment('noise,echo')
    with pytest.raises(SettingError, match='unknown augmentation'): augment_waveform(np.zeros(100), SR, 'echo', 0)


def test_augment_featureset_keys_and_values(clip):
    fs = augment_featureset('default', 'gain', 1)
    assert fs.name == 'default@gain1' and fs.compute(clip)[0] == get_featureset('default').compute(clip)[0]
    assert np.array_equal(fs.compute(clip)[1], fs.compute(clip)[1])
    keys = {augment_featureset('default', k, s).key() for k in ('gain', 'noise') for s in (0, 1)}
    assert len(keys) == 4


# ---- the classical model --------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def two(demo):
    spk = sorted(demo.speaker.unique())
    return demo[demo.speaker.isin(spk[:2])].reset_index(drop=True), demo[demo.speaker == spk[-1]].reset_index(drop=True)


def test_classical_trains_on_augmented_copies_and_never_augments_tests(two, monkeypatch, tmp_path):
    from ser_kit.classical import EmotionRecognizer
    train, test = two
    seen = []
    real = AUGMENTS['gain']
    def spy(y, sr, rng): seen.append(zlib.crc32(np.asarray(y, np.float32).tobytes())); return real(y, sr, rng)
    monkeypatch.setitem(AUGMENTS, 'gain', spy)
    rec = EmotionRecognizer('logreg', 'default', adapt='z', speeds=(), augment='gain', seed=987, n_jobs=1).fit(train)
    assert rec.pipeline_.named_steps['scale'].n_samples_seen_ == 2 * len(train)   # one copy per training clip
    crc = lambda m: {zlib.crc32(load_audio(q, sr=SR).tobytes()) for q in m.path}
    assert crc(train) <= set(seen) and len(seen) <= len(train) + 1          # every training clip (+ a probe for names)
    n = len(seen)
    pred = rec.predict(list(test.path)); rec.predict([test.path.iloc[0]]); rec.score(test)
    assert len(pred) == len(test) and set(pred) <= set(rec.labels)
    assert len(seen) == n and not crc(test) & set(seen)                     # test clips: never augmented
    assert rec.settings()['augment'] == ['gain']
    back = EmotionRecognizer.load(rec.save(tmp_path / 'aug.skops'))
    assert back.settings() == rec.settings() and back.predict(list(test.path)) == pred


def test_classical_augment_without_adaptation(two):
    from ser_kit.classical import EmotionRecognizer
    train, test = two
    rec = EmotionRecognizer('logreg', 'default', adapt=None, augment=['noise', 'reverb'], n_jobs=1).fit(train)
    assert rec.pipeline_.named_steps['scale'].n_samples_seen_ == 3 * len(train) and 0 <= rec.score(test) <= 1
    with pytest.raises(SettingError, match='unknown augmentation'): EmotionRecognizer(augment='echo')
