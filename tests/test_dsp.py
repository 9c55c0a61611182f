"""ser_kit's hand-written DSP (the `default` feature set's spectrogram, mel filterbank, log-mel, MFCC, F0) against librosa.

Matching settings: sr 16 kHz, n_fft 512, hop 160, win_length 400, periodic Hann window, centred frames with zero padding
(`center=True, pad_mode='constant'`), power 2, Slaney mel scale (`htk=False`) with Slaney area normalisation
(`norm='slaney'`), fmin 0, fmax sr/2, dB as `power_to_db(ref=1, amin=1e-10, top_db=None)`, ortho DCT-II.
librosa's `mfcc(y=...)` clips at `top_db=80`, ser_kit does not: compare through `mfcc(S=...)`.
F0: `librosa.pyin(fmin=60, fmax=600, frame_length=1024, hop_length=160)`, same frame centres as `f0_track`."""
import numpy as np, pytest
librosa = pytest.importorskip('librosa')
from ser_kit.features import mel_filterbank, power_spectrogram, log_mel, dct_matrix, f0_track, SR, N_FFT, WIN, HOP
from ser_kit.data import load_audio

STFT = dict(n_fft=N_FFT, hop_length=HOP, win_length=WIN, window='hann', center=True, pad_mode='constant')
MEL = dict(n_mels=40, fmin=0.0, fmax=SR/2, htk=False, norm='slaney')

def _tone(f0, seconds=1.0):
    "Five harmonics (1/k amplitudes) following the F0 curve `f0` (a number or one value per sample)."
    n = int(seconds*SR)
    ph = 2*np.pi*np.cumsum(np.broadcast_to(np.asarray(f0, float), (n,)))/SR
    return (0.3*sum(np.sin(k*ph)/k for k in range(1, 6))).astype(np.float32)

def _cents(a, b): return 1200*np.abs(np.log2(a/b))

def _pyin(y):
    f, voiced, _ = librosa.pyin(y, fmin=60, fmax=600, sr=SR, frame_length=1024, hop_length=HOP, center=True)
    return f, voiced

@pytest.fixture(scope='module')
def clip(demo):
    "A real clip of the demo corpus, 16 kHz."
    return load_audio(demo.path.iloc[0], sr=SR)

def test_mel_filterbank_equals_librosa():
    fb, ref = mel_filterbank(SR, N_FFT, 40), librosa.filters.mel(sr=SR, n_fft=N_FFT, **MEL)
    assert fb.shape == ref.T.shape
    assert np.abs(fb - ref.T).max() < 1e-7                            # measured 9e-10 (peak weight 0.013)

def test_power_spectrogram_equals_librosa_stft(clip):
    P, S = power_spectrogram(clip), np.abs(librosa.stft(clip, **STFT)).T**2
    assert P.shape == S.shape                                         # same frame count and centres
    assert np.abs(P - S).max() < 1e-5*S.max()                         # measured 1.5e-7 of the peak (float32)

def test_log_mel_and_mfcc_equal_librosa(clip):
    L = log_mel(power_spectrogram(clip), SR, 40)
    M = librosa.feature.melspectrogram(y=clip, sr=SR, power=2.0, **STFT, **MEL)
    Ld = librosa.power_to_db(M, ref=1.0, amin=1e-10, top_db=None)
    assert np.abs(L - Ld.T).max() < 1e-3                              # dB; measured 2.4e-4
    C, Cl = L @ dct_matrix(40, 20), librosa.feature.mfcc(S=Ld, n_mfcc=20, dct_type=2, norm='ortho')
    assert np.abs(C - Cl.T).max() < 1e-3                              # measured 1.2e-4

@pytest.mark.parametrize('f0', [110.0, 220.0, 330.0])
def test_f0_steady_tones_match_pyin_and_truth(f0):
    y = _tone(f0)
    ours, _ = f0_track(y, SR)
    ref, voiced = _pyin(y)
    both = (ours > 0) & voiced
    assert both.mean() > 0.9                                          # measured 0.98-1.0
    assert np.median(_cents(ours[both], ref[both])) < 10              # measured 0.4, 1.0, 4.4 cents
    assert np.median(_cents(ours[ours > 0], f0)) < 10                 # measured 0.2, 1.6, 3.1 cents

def test_f0_real_clip_matches_pyin(clip):
    ours, _ = f0_track(clip, SR)
    ref, voiced = _pyin(clip)
    assert len(ours) == len(ref)
    assert ((ours > 0) == voiced).mean() > 0.9                        # voicing decisions agree; measured 0.98
    both = (ours > 0) & voiced
    assert both.sum() > 50
    c = _cents(ours[both], ref[both])
    assert np.median(c) < 15 and np.percentile(c, 90) < 60            # measured 7.3 and 37 cents

@pytest.mark.xfail(strict=True, reason="f0_track halves a gliding F0 in about 40% of frames (octave errors): "
                   "candidates are picked on the integer-lag autocorrelation, not the interpolated peak")
def test_f0_glide_matches_pyin():
    f = np.geomspace(120, 360, SR)                                     # 1.6 octaves up in one second
    ours, _ = f0_track(_tone(f), SR)
    ref, voiced = _pyin(_tone(f))
    both = (ours > 0) & voiced
    assert (_cents(ours[both], ref[both]) > 600).mean() < 0.05        # pyin: no octave error; ours: 37%
