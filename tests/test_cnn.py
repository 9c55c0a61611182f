"CNN models: training sanity, augmentation, checkpoints (round trip and refusal), CPU fallback of the GPU paths."
import json, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf, torch
from ser_kit.cnn import *
from ser_kit.cnn import _sha256

torch.set_num_threads(1)
SMALL = dict(channels=(16, 16), dropout=0.0)
FEAT = dict(seconds=1.0, crop=0.6)


def frames(n=8, T=120, seed=0):
    "Synthetic log-mel batches in dB [n, 1, 64, T]."
    g = torch.Generator().manual_seed(seed)
    return -60 + 20 * torch.rand((n, 1, 64, T), generator=g)


@pytest.fixture(scope='module')
def tiny_corpus(tmp_path_factory):
    "Three speakers x two emotions x three one-second clips: tones whose pitch and loudness depend on the emotion."
    root = tmp_path_factory.mktemp('tiny'); rows = []; rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for spk in ('01', '02', '03'):
        for emo, f0, amp in (('neutral', 140, 0.1), ('angry', 260, 0.5)):
            for k in range(3):
                y = amp * np.sin(2 * np.pi * (f0 + 10 * k + 5 * int(spk)) * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
                p = root / f'{spk}_{emo}_{k}.wav'; sf.write(p, (y + 0.01 * rng.standard_normal(16000)).astype(np.float32), 16000)
                rows.append(dict(path=str(p), corpus='custom', speaker=spk, emotion=emo, gender='male' if int(spk) % 2 else 'female'))
    return pd.DataFrame(rows)


@pytest.fixture(scope='module')
def trained(tiny_corpus, tmp_path_factory):
    rec = CNNRecognizer(arch='resnet1d', epochs=2, batch_size=8, arch_params=SMALL, features=FEAT, progress=False,
                        val_speakers=['03'], tta=3, augment={})
    rec.fit(tiny_corpus)
    folder = rec.save(tmp_path_factory.mktemp('ckpt') / 'cnn')
    return rec, folder


# ---- models and training -------------------------------------------------------------------------------------------
@pytest.mark.parametrize('arch', sorted(ARCHS))
def test_models_any_length(arch):
    m = build_model(arch, 5).eval()
    for T in (60, 157):
        assert m(frames(3, T)).shape == (3, 5)


def test_build_model_rejects_unknown_arch():
    with pytest.raises(ValueError, match='arch'): build_model('vgg', 4)
    with pytest.raises(ValueError, match='arch'): CNNRecognizer(arch='vgg')


def test_overfits_tiny_batch():
    X = frames(12, 60).numpy(); y = np.arange(12) % 4
    m = build_model('resnet1d', 4, **SMALL)
    h = train_model(m, FrameDataset(X, y), None, epochs=15, batch_size=12, augment={}, label_smoothing=0.0, t0=15, lr=3e-3,
                    progress=False)
    assert h.train_loss.iloc[-1] < 0.3 * h.train_loss.iloc[0]


def test_training_is_reproducible():
    X = frames(16, 80).numpy(); y = np.arange(16) % 2
    outs = []
    for _ in range(2):
        seed_everything(0); m = build_model('cnn2d', 2, channels=(8, 8))
        train_model(m, FrameDataset(X, y, crop=60, train=True), (X, y), epochs=2, batch_size=8, progress=False)
        outs.append(predict_logits(m, X))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)


def test_early_stopping_keeps_best_epoch():
    X = frames(16, 80).numpy(); y = np.arange(16) % 2
    m = build_model('resnet1d', 2, **SMALL)
    h = train_model(m, FrameDataset(X, y), (X[:8], y[:8]), epochs=30, patience=2, batch_size=8, progress=False)
    assert len(h) < 30 or h.val_uar.max() == 1.0
    assert {'epoch', 'train_loss', 'val_loss', 'val_uar', 'lr', 'seconds'} <= set(h.columns)


def test_frontend_normalises_and_adds_deltas():
    x = frames(2, 50)
    out = Frontend(time_pool=1)(x)
    assert out.shape == (2, 3, 64, 50)
    torch.testing.assert_close(out[:, 0].mean(-1), torch.zeros(2, 64), atol=1e-4, rtol=0)     # each band's clip mean removed
    assert Frontend()(x).shape == (2, 3, 64, 25)                                              # 20 ms frames
    band = Frontend(norm='band').train()(x)
    torch.testing.assert_close(band[:, 0].mean((0, 2)), torch.zeros(64), atol=1e-4, rtol=0)   # bands standardised over the batch
    torch.testing.assert_close(Frontend(norm='band').eval()(x + 12.0), Frontend(norm='band').eval()(x), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match='norm'): Frontend(norm='pcen')
    torch.testing.assert_close(Frontend()(x + 12.0), Frontend()(x), atol=1e-4, rtol=1e-4)   # gain-invariant


def test_crop_frames_and_dataset():
    assert list(crop_frames(np.arange(10), 4)) == [3, 4, 5, 6]
    assert list(crop_frames(np.arange(10), 4, 'start')) == [0, 1, 2, 3]
    assert list(crop_frames(np.arange(3), 5)) == [0, 1, 2, 2, 2]
    ds = FrameDataset(frames(4, 100).numpy(), np.arange(4), crop=40, train=True)
    x, y = ds[2]
    assert x.shape == (1, 64, 40) and y == 2


# ---- augmentation --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', sorted(AUG_FUNCS))
def test_augmentation_keeps_shape_and_finite(name):
    x = frames(4, 90); g = torch.Generator().manual_seed(1)
    y = AUG_FUNCS[name](x, AUGMENT[name], g)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    assert not torch.equal(y, x)


def test_augment_batch_switches():
    x = frames(4, 90)
    assert torch.equal(augment_batch(x, {}), x)
    assert torch.equal(augment_batch(x, {k: None for k in AUGMENT}), x)
    y = augment_batch(x, AUGMENT, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    silent = torch.full((2, 1, 64, 50), -100.0)                          # digital silence stays finite
    assert torch.isfinite(augment_batch(silent, AUGMENT, torch.Generator().manual_seed(0))).all()


def test_mixup_targets():
    x = frames(6, 40); t = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    xm, tm = mixup(x, t, 0.4, torch.Generator().manual_seed(0))
    assert xm.shape == x.shape and torch.isfinite(xm).all()
    torch.testing.assert_close(tm.sum(1), torch.ones(6))
    assert (tm.max(1).values >= 0.5 - 1e-6).all()
    assert mixup(x, t, 0)[0] is x


# ---- recogniser, checkpoints ---------------------------------------------------------------------------------------
def test_validation_speakers_come_from_training(tiny_corpus):
    v = choose_val_speakers(tiny_corpus, 0.4, seed=0)
    assert 1 <= len(v) < 3 and set(v) <= set(tiny_corpus.speaker)
    with pytest.raises(ValueError, match='2 training speakers'): choose_val_speakers(tiny_corpus[tiny_corpus.speaker == '01'])


def test_fit_predict_interface(trained, tiny_corpus):
    rec, _ = trained
    assert rec.labels == ['neutral', 'angry'] and rec.val_speakers == ['03']
    P, ok, bad = rec.predict_proba_batch(list(tiny_corpus.path[:3]) + ['/no/such/file.wav'])
    assert P.shape == (3, 2) and np.allclose(P.sum(1), 1, atol=1e-5) and len(ok) == 3
    assert list(bad.path) == ['/no/such/file.wav']
    assert rec.predict([tiny_corpus.path[0]])[0] in rec.labels
    assert 0 <= rec.score(tiny_corpus) <= 1
    assert rec.samples_by_class().sum() == len(tiny_corpus)


def test_checkpoint_round_trip_identical(trained, tiny_corpus):
    rec, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == ['model.safetensors', 'ser_kit.json']
    cfg = json.loads((folder / 'ser_kit.json').read_text())
    assert cfg['model_type'] == 'cnn' and cfg['arch'] == 'resnet1d' and cfg['label_map'] == {'0': 'neutral', '1': 'angry'}
    assert {'features', 'training', 'versions', 'weights_sha256'} <= set(cfg)
    rec2 = CNNRecognizer.load(folder)
    paths = list(tiny_corpus.path)
    np.testing.assert_array_equal(rec2.predict_proba_batch(paths)[0], rec.predict_proba_batch(paths)[0])
    from ser_kit.classical import load_model
    assert isinstance(load_model(folder), CNNRecognizer)


def _copy(folder, tmp_path):
    d = tmp_path / 'copy'; shutil.copytree(folder, d); return d


@pytest.mark.parametrize('damage,file,msg', [
    (lambda d: (d / 'ser_kit.json').write_text('{"model_type": "cnn", "arch"'), 'ser_kit.json', 'config'),
    (lambda d: (d / 'ser_kit.json').write_text('[1, 2]'), 'ser_kit.json', 'config'),
    (lambda d: (d / 'ser_kit.json').unlink(), 'ser_kit.json', 'missing'),
    (lambda d: (d / 'model.safetensors').write_bytes((d / 'model.safetensors').read_bytes()[:-100]), 'model.safetensors', 'SHA-256'),
    (lambda d: (d / 'model.safetensors').write_bytes(b'\x00' * 64), 'model.safetensors', 'SHA-256'),
])
def test_damaged_checkpoint_refused(trained, tmp_path, damage, file, msg):
    d = _copy(trained[1], tmp_path); damage(d)
    with pytest.raises(CheckpointError, match=msg) as e: CNNRecognizer.load(d)
    assert file in str(e.value)


def _rewrite(d, tensors=None, **cfg_changes):
    "Change the weights and/or config and record a matching checksum (a deliberate, consistent-looking tampering)."
    from safetensors.torch import save_file, load_file
    if tensors is not None: save_file(tensors(load_file(d / 'model.safetensors')), str(d / 'model.safetensors'))
    cfg = json.loads((d / 'ser_kit.json').read_text()) | cfg_changes
    cfg['weights_sha256'] = _sha256(d / 'model.safetensors')
    (d / 'ser_kit.json').write_text(json.dumps(cfg))


def test_wrong_shapes_refused(trained, tmp_path):
    d = _copy(trained[1], tmp_path)
    def widen(t):
        k = next(k for k in t if k.endswith('head.1.weight')); t[k] = torch.zeros(t[k].shape[0] + 1, t[k].shape[1]); return t
    _rewrite(d, widen)
    with pytest.raises(CheckpointError, match='do not fit') as e: CNNRecognizer.load(d)
    assert 'model.safetensors' in str(e.value)


def test_other_checkpoint_problems_refused(trained, tmp_path):
    d = _copy(trained[1], tmp_path); _rewrite(d, arch='cnn2d', arch_params={})
    with pytest.raises(CheckpointError, match='do not fit'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path / 'b'); _rewrite(d, model_type='classical')
    with pytest.raises(CheckpointError, match='model_type'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path / 'c'); (d / 'model.safetensors').write_bytes(b'not safetensors'); _rewrite(d)
    with pytest.raises(CheckpointError, match='safetensors'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path / 'e'); _rewrite(d, lambda t: {k: (v * float('nan') if v.is_floating_point() else v) for k, v in t.items()})
    with pytest.raises(CheckpointError, match='NaN'): CNNRecognizer.load(d)


def test_untrained_model_errors(tmp_path):
    with pytest.raises(RuntimeError, match='not trained'): CNNRecognizer().save(tmp_path / 'x')
    with pytest.raises(RuntimeError, match='not trained'): CNNRecognizer().predict_frames(np.zeros((1, 1, 64, 50), np.float32))


# ---- device handling -----------------------------------------------------------------------------------------------
def test_cpu_fallback_when_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert default_device() == 'cpu' and amp_dtype(default_device()) is None
    X = frames(8, 60).numpy(); y = np.arange(8) % 2
    m = build_model('crnn', 2, channels=(8, 8), hidden=8)
    h = train_model(m, FrameDataset(X, y), (X, y), epochs=1, batch_size=4, progress=False)   # device=None -> cpu
    assert len(h) == 1 and next(m.parameters()).device.type == 'cpu'


def test_amp_dtype_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: True)
    assert amp_dtype('cuda') == torch.bfloat16 and amp_dtype('cuda:0') == torch.bfloat16
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: False)
    assert amp_dtype('cuda') == torch.float16
    assert amp_dtype('cpu') is None
    with autocast('cpu'): assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_gpu_training_step():
    X = frames(8, 60).numpy(); y = np.arange(8) % 2
    m = build_model('resnet1d', 2, **SMALL)
    train_model(m, FrameDataset(X, y), (X, y), epochs=1, batch_size=4, device='cuda', progress=False)
    assert predict_logits(m, X).shape == (8, 2)


# ---- commands ------------------------------------------------------------------------------------------------------
def test_train_predict_commands_with_cnn(tiny_corpus, tmp_path):
    from ser_kit.classical import train_command, predict_command
    import io
    out = tmp_path / 'cnn_model'; buf = io.StringIO(); tiny_corpus.to_csv(tmp_path / 'tiny.csv', index=False)
    train_command(str(tmp_path / 'tiny.csv'), model='cnn', out=str(out), stdout=buf, epochs=1, batch_size=8, arch='crnn',
                  arch_params=dict(channels=(8, 8), hidden=8), features=FEAT, val_speakers=['03'], progress=False)
    assert (out / 'ser_kit.json').is_file() and 'model saved' in buf.getvalue()
    t = predict_command(str(out), [tiny_corpus.path[0], str(tmp_path / 'missing.wav')], stdout=io.StringIO(), stderr=io.StringIO())
    assert len(t) == 1 and len(t.attrs['skipped']) == 1


# ---- fusion with the classical model -------------------------------------------------------------------------------
def test_fusion_is_the_weighted_mean_and_round_trips(trained, tiny_corpus, tmp_path):
    from ser_kit.classical import EmotionRecognizer, load_model
    rec, _ = trained
    cls = EmotionRecognizer(n_jobs=1).fit(tiny_corpus)
    fused = FusionRecognizer.from_models(cls, rec, weight=0.25)
    paths = list(tiny_corpus.path[:4]) + [str(tmp_path / 'missing.wav')]
    P, ok, sk = fused.predict_proba_batch(paths)
    assert ok == paths[:4] and list(sk.path) == [paths[-1]]           # the unreadable file is reported, not fatal
    np.testing.assert_allclose(P, 0.75 * cls.predict_proba_batch(ok)[0] + 0.25 * rec.predict_proba_batch(ok)[0], atol=1e-6)
    np.testing.assert_allclose(P.sum(1), 1, atol=1e-5)
    folder = fused.save(tmp_path / 'fusion')
    again = load_model(folder)
    assert isinstance(again, FusionRecognizer) and again.weight == 0.25 and again.labels == fused.labels
    np.testing.assert_array_equal(again.predict_proba_batch(ok)[0], P)
    w = folder / 'cnn' / 'model.safetensors'; b = bytearray(w.read_bytes()); b[-1] ^= 1; w.write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match='SHA-256'): load_model(folder)   # a tampered member is refused


def test_fusion_refuses_bad_settings(trained, tmp_path):
    rec, _ = trained
    with pytest.raises(ValueError, match='between 0 and 1'): FusionRecognizer(weight=1.5)
    with pytest.raises(CheckpointError, match='ser_kit.json'): FusionRecognizer.load(tmp_path)
    other = CNNRecognizer(); other.labels = ['happy', 'sad']
    with pytest.raises(ValueError, match='different emotions'): FusionRecognizer.from_models(other, rec)


def test_train_command_with_fusion(tiny_corpus, tmp_path):
    from ser_kit.classical import train_command, load_model
    import io
    out = tmp_path / 'fusion_model'; buf = io.StringIO(); tiny_corpus.to_csv(tmp_path / 'tiny.csv', index=False)
    rec = train_command(str(tmp_path / 'tiny.csv'), model='fusion', out=str(out), stdout=buf, epochs=1, batch_size=8, arch='crnn',
                        arch_params=dict(channels=(8, 8), hidden=8), features=FEAT, val_speakers=['03'], progress=False)
    assert sorted(p.name for p in out.iterdir()) == ['classical.skops', 'cnn', 'ser_kit.json']
    assert [type(m).__name__ for m in rec.members] == ['EmotionRecognizer', 'CNNRecognizer']
    assert load_model(out).predict(list(tiny_corpus.path[:3])) == rec.predict(list(tiny_corpus.path[:3]))
