"CNN models: training sanity, augmentation, checkpoints (round trip, refusal, atomic saves, 0.1.0 folders), CPU fallback."
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf, torch
import ser_kit.cnn
from ser_kit.cnn import *
from ser_kit.data import SettingError
from ser_kit.models import (CheckpointError, load_model, sha256_file, folder_manifest, HISTORY_COLUMNS,
                            description_digest)

torch.set_num_threads(1)
SMALL = dict(channels=(16, 16), dropout=0.0)
FEAT = dict(seconds=1.0, crop=0.6)
FIXTURES = Path(__file__).parent / 'fixtures' / 'v0.1.0'


def frames(n=8, T=120, seed=0):
    "Synthetic log-mel batches in dB [n, 1, 64, T]."
    g = torch.Generator().manual_seed(seed)
    return -60 + 20 * torch.rand((n, 1, 64, T), generator=g)


@pytest.fixture(scope='module')
def trained(tiny_corpus, tmp_path_factory):
    "A two-network ensemble, two epochs each, saved."
    rec = CNNRecognizer(arch='resnet1d', epochs=2, batch_size=8, arch_params=SMALL, features=FEAT, n_jobs=1,
                        val_speakers=['03'], tta=3, n_models=2, augment={})
    with pytest.MonkeyPatch.context() as mp:      # a gate that 2 emotions can cross, so the twin set trains too
        mp.setattr(ser_kit.cnn, 'GATE_BREADTH', 1.0); rec.fit(tiny_corpus)
    folder = rec.save(tmp_path_factory.mktemp('ckpt') / 'cnn')
    return rec, folder


# ---- models and training -------------------------------------------------------------------------------------------
@pytest.mark.parametrize('arch', sorted(ARCHS))
def test_models_any_length(arch):
    m = build_model(arch, 5).eval()
    for T in (60, 157):
        assert m(frames(3, T)).shape == (3, 5)


def test_settings_are_checked_in_the_constructor():
    for bad, msg in ((dict(arch='vgg'), 'arch'), (dict(epochs=0), 'epochs must be at least 1'), (dict(n_models=0), 'n_models'),
                     (dict(tta=0), 'tta'), (dict(batch_size=0), 'batch_size'), (dict(val_fraction=1.5), 'val_fraction'),
                     (dict(augment=dict(reverb=1)), 'unknown augmentation'), (dict(features=dict(kind='cqt')), 'kind')):
        with pytest.raises(SettingError, match=msg): CNNRecognizer(**bad)
    with pytest.raises(SettingError, match='arch'): build_model('vgg', 4)
    with pytest.raises(SettingError, match='not a training setting'):
        train_model(build_model('cnn2d', 2, channels=(4, 4)), FrameDataset(frames(2, 40).numpy(), np.arange(2)), momentum=0.9)


def test_defaults_and_settings():
    rec = CNNRecognizer()
    s = rec.settings()
    assert (s['n_jobs'], s['progress'], s['val_fraction'], s['epochs']) == (-1, False, 0.15, 30)
    assert (s['n_models'], s['speeds']) == (3, [0.9, 1.1])           # an ensemble of short runs, speed-perturbed voices
    assert s['augment'] == json.loads(json.dumps(AUGMENT))
    assert rec.train_settings() == CNNSettings(augment=rec.augment) and rec.train_settings().epochs == 30


def test_overfits_tiny_batch():
    X = frames(12, 60).numpy(); y = np.arange(12) % 4
    m = build_model('resnet1d', 4, **SMALL)
    h = train_model(m, FrameDataset(X, y), None, epochs=15, batch_size=12, augment={}, label_smoothing=0.0, t0=15, lr=3e-3)
    assert h.train_loss.iloc[-1] < 0.3 * h.train_loss.iloc[0]


def test_training_is_reproducible():
    X = frames(16, 80).numpy(); y = np.arange(16) % 2
    outs = []
    for _ in range(2):
        seed_everything(0); m = build_model('cnn2d', 2, channels=(8, 8))
        train_model(m, FrameDataset(X, y, crop=60, train=True), (X, y), CNNSettings(epochs=2, batch_size=8))
        outs.append(predict_logits(m, X))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)


def test_early_stopping_keeps_best_epoch_and_history_schema():
    X = frames(16, 80).numpy(); y = np.arange(16) % 2
    m = build_model('resnet1d', 2, **SMALL)
    h = train_model(m, FrameDataset(X, y), (X[:8], y[:8]), epochs=30, patience=2, batch_size=8)
    assert len(h) < 30 or h.val_uar.max() == 1.0
    assert list(h.columns) == list(HISTORY_COLUMNS)


def test_one_epoch_returns_the_mean_loss():
    X = frames(8, 60).numpy(); y = np.arange(8) % 2
    m = build_model('cnn2d', 2, channels=(4, 4)); s = CNNSettings(epochs=1, augment={})
    opt = torch.optim.AdamW(m.parameters()); sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 1)
    loader = torch.utils.data.DataLoader(FrameDataset(X, y), batch_size=4)
    loss = train_one_epoch(m, loader, opt, sched, torch.amp.GradScaler('cuda', enabled=False), s, 0)
    assert np.isfinite(loss) and loss > 0


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


# ---- recogniser ----------------------------------------------------------------------------------------------------
def test_validation_speakers_must_be_training_speakers(tiny_corpus):
    with pytest.raises(SettingError, match='some, not all'):
        CNNRecognizer(epochs=1, val_speakers=['99'], features=FEAT, n_jobs=1).fit(tiny_corpus)


def test_fit_predict_interface(trained, tiny_corpus):
    rec, _ = trained
    assert rec.labels == ['neutral', 'angry'] and rec.val_speakers_ == ['03'] and len(rec.networks) == 2
    P, ok, bad = rec.predict_proba_batch(list(tiny_corpus.path[:3]) + ['/no/such/file.wav'])
    assert P.shape == (3, 2) and np.allclose(P.sum(1), 1, atol=1e-5) and len(ok) == 3
    assert list(bad.path) == ['/no/such/file.wav']
    assert rec.predict([tiny_corpus.path[0]])[0] in rec.labels
    assert 0 <= rec.score(tiny_corpus) <= 1
    assert rec.samples_by_class().sum() == len(tiny_corpus)


def test_predict_proba_audio_takes_decoded_clips_and_groups_speakers(trained, tiny_corpus):
    from ser_kit.data import load_audio
    rec, _ = trained; paths = list(tiny_corpus.path[:4])
    clips = [load_audio(p, sr=16000) for p in paths]
    P = rec.predict_proba_audio(clips)
    np.testing.assert_allclose(P, rec.predict_proba_batch(paths)[0], atol=1e-6)
    grouped = rec.predict_proba_audio(clips, ['a', 'a', 'b', 'b'])
    assert not np.allclose(grouped, P, atol=1e-6)                       # the default adapts to each speaker's clips
    np.testing.assert_allclose(rec.predict_proba_batch(paths, speakers=['a', 'a', 'b', 'b'])[0], grouped, atol=1e-6)
    assert rec.predict_proba_audio([]).shape == (0, 2) and rec.adaptation() == 'speaker-adaptive (em, network vectors; gated speaker batch norm)'
    t = rec.predict_table(paths, speakers=['a', 'a', 'b', 'b'])
    assert list(t.speaker_clips) == [2, 2, 2, 2] and t.attrs['adaptation'] == rec.adaptation()


def test_unadapted_cnn_ignores_speakers(tiny_corpus):
    rec = CNNRecognizer(arch='resnet1d', epochs=1, batch_size=8, arch_params=SMALL, features=FEAT, n_jobs=1,
                        val_speakers=['03'], augment={}, n_models=1, adapt=None, speaker_bn=None).fit(tiny_corpus)
    paths = list(tiny_corpus.path[:4]); P = rec.predict_proba_batch(paths)[0]
    np.testing.assert_allclose(rec.predict_proba_batch(paths, speakers=['a', 'a', 'b', 'b'])[0], P, atol=1e-6)
    assert rec.adaptation() == 'none' and rec.head_ is None and rec.head_data_ is None


def test_history_is_one_table_in_the_schema(trained):
    rec, _ = trained
    assert list(rec.history_.columns) == list(HISTORY_COLUMNS) + ['network']
    assert rec.history_.network.tolist() == [0, 0, 1, 1]
    per_net = rec.network_histories()
    assert list(per_net) == ['network 0', 'network 1', 'network 0 (speaker BN)', 'network 1 (speaker BN)']
    assert list(per_net['network 1'].epoch) == [1, 2] == list(per_net['network 1 (speaker BN)'].epoch)


# ---- checkpoints ---------------------------------------------------------------------------------------------------
def test_checkpoint_round_trip_identical(trained, tiny_corpus):
    rec, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == ['model.safetensors', 'ser_kit.json']
    cfg = json.loads((folder / 'ser_kit.json').read_text())
    assert cfg['model_type'] == 'cnn' and cfg['arch'] == 'resnet1d' and cfg['labels'] == ['neutral', 'angry']
    assert cfg['format_version'] == 3 and cfg['files'] == {'model.safetensors': sha256_file(folder / 'model.safetensors')}
    assert {'features', 'training', 'versions', 'class_counts', 'history'} <= set(cfg)
    rec2 = load_model(folder)
    assert isinstance(rec2, CNNRecognizer)
    paths = list(tiny_corpus.path)
    np.testing.assert_array_equal(rec2.predict_proba_batch(paths)[0], rec.predict_proba_batch(paths)[0])
    assert rec2.settings() == rec.settings()                                   # settings round-trip
    pd.testing.assert_frame_equal(rec2.history_, rec.history_.round(5), check_dtype=False)
    assert rec2.val_speakers_ == ['03']


def test_prosody_rows_train_save_and_load(trained, tiny_corpus, tmp_path):
    "A CNN with the F0 and periodicity rows: 66 input rows, the setting saved, the same predictions after loading."
    rec = CNNRecognizer(arch='resnet1d', epochs=1, batch_size=8, arch_params=SMALL, features=FEAT | dict(prosody=True),
                        n_jobs=1, val_speakers=['03'], n_models=1, augment=dict(gain=6.0, shift=0.1)).fit(tiny_corpus)
    assert rec.networks[0].stem[0].in_channels == 3 * (64 + 2) and rec.networks[0].front.n_extra == 2
    rec2 = load_model(rec.save(tmp_path / 'p'))
    assert rec2.features['prosody'] is True
    paths = list(tiny_corpus.path)
    np.testing.assert_array_equal(rec2.predict_proba_batch(paths)[0], rec.predict_proba_batch(paths)[0])
    d = _copy(trained[1], tmp_path, 'before')                      # a folder saved before the setting existed
    cfg = json.loads((d / 'ser_kit.json').read_text()); cfg['features'].pop('prosody')
    cfg.pop('description_sha256'); cfg['format_version'] = 2                 # as format 2 wrote it
    (d / 'ser_kit.json').write_text(json.dumps(cfg))
    assert load_model(d).features['prosody'] is False


def _copy(folder, tmp_path, name='copy'):
    d = tmp_path / name; shutil.copytree(folder, d); return d


@pytest.mark.parametrize('damage,file,msg', [
    (lambda d: (d / 'ser_kit.json').write_text('{"model_type": "cnn", "arch"'), 'ser_kit.json', 'JSON'),
    (lambda d: (d / 'ser_kit.json').write_text('[1, 2]'), 'ser_kit.json', 'JSON object'),
    (lambda d: (d / 'ser_kit.json').unlink(), 'ser_kit.json', 'missing'),
    (lambda d: (d / 'model.safetensors').unlink(), 'model.safetensors', 'missing'),
    (lambda d: (d / 'model.safetensors').write_bytes((d / 'model.safetensors').read_bytes()[:-100]), 'model.safetensors', 'SHA-256'),
    (lambda d: (d / 'model.safetensors').write_bytes(b'\x00' * 64), 'model.safetensors', 'SHA-256'),
])
def test_damaged_checkpoint_refused(trained, tmp_path, damage, file, msg):
    d = _copy(trained[1], tmp_path); damage(d)
    with pytest.raises(CheckpointError, match=msg) as e: CNNRecognizer.load(d)
    assert file in str(e.value)


def _edit(d, **changes):
    "Change fields of ser_kit.json; a change to None deletes the field."
    cfg = json.loads((d / 'ser_kit.json').read_text()) | changes
    cfg = {k: v for k, v in cfg.items() if v is not None}; cfg['description_sha256'] = description_digest(cfg)
    (d / 'ser_kit.json').write_text(json.dumps(cfg))


def _rewrite(d, tensors=None, **cfg_changes):
    "Change the weights and/or description and record a matching manifest (a deliberate, consistent-looking tampering)."
    from safetensors.torch import save_file, load_file
    if tensors is not None: save_file(tensors(load_file(d / 'model.safetensors')), str(d / 'model.safetensors'))
    _edit(d, **cfg_changes, files=folder_manifest(d))


def test_manifest_is_required(trained, tmp_path):
    d = _copy(trained[1], tmp_path, 'a'); _edit(d, files=None)
    with pytest.raises(CheckpointError, match='retrain it') as e: CNNRecognizer.load(d)
    assert 'ser_kit.json' in str(e.value)
    d = _copy(trained[1], tmp_path, 'b'); _edit(d, files={'other.bin': 'x'}); (d / 'other.bin').write_bytes(b'')
    with pytest.raises(CheckpointError): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path, 'c'); (d / 'notes.txt').write_text('x')       # the weights left out of the manifest
    _edit(d, files={'notes.txt': sha256_file(d / 'notes.txt')})
    with pytest.raises(CheckpointError, match='no SHA-256 of model.safetensors'): CNNRecognizer.load(d)


def test_wrong_shapes_refused(trained, tmp_path):
    d = _copy(trained[1], tmp_path)
    def widen(t):
        k = next(k for k in t if k.endswith('head.1.weight')); t[k] = torch.zeros(t[k].shape[0] + 1, t[k].shape[1]); return t
    _rewrite(d, widen)
    with pytest.raises(CheckpointError, match='do not fit') as e: CNNRecognizer.load(d)
    assert 'model.safetensors' in str(e.value)


def test_labels_must_fit_the_outputs(trained, tmp_path):
    d = _copy(trained[1], tmp_path); _rewrite(d, labels=['neutral', 'angry', 'sad'])
    with pytest.raises(CheckpointError, match='do not fit the labels') as e: CNNRecognizer.load(d)
    assert 'model.safetensors' in str(e.value) and 'ser_kit.json lists 3' in str(e.value)


def test_other_checkpoint_problems_refused(trained, tmp_path):
    d = _copy(trained[1], tmp_path, 'a'); _rewrite(d, arch='cnn2d', arch_params={})
    with pytest.raises(CheckpointError, match='do not fit'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path, 'b'); _rewrite(d, model_type='classical')
    with pytest.raises(CheckpointError, match='model_type'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path, 'c'); (d / 'model.safetensors').write_bytes(b'not safetensors'); _rewrite(d)
    with pytest.raises(CheckpointError, match='safetensors'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path, 'd'); _rewrite(d, lambda t: {k: (v * float('nan') if v.is_floating_point() else v) for k, v in t.items()})
    with pytest.raises(CheckpointError, match='NaN'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path, 'e'); _rewrite(d, n_models='two')
    with pytest.raises(CheckpointError, match='not a valid CNN model description'): CNNRecognizer.load(d)
    d = _copy(trained[1], tmp_path, 'f'); _rewrite(d, arch_params={'width': 3})
    with pytest.raises(CheckpointError, match='arch_params'): CNNRecognizer.load(d)


def test_untrained_model_errors(tmp_path):
    with pytest.raises(RuntimeError, match='not trained'): CNNRecognizer().save(tmp_path / 'x')
    with pytest.raises(RuntimeError, match='not trained'): CNNRecognizer().predict_frames(np.zeros((1, 1, 64, 50), np.float32))
    assert not (tmp_path / 'x').exists()


def test_interrupted_save_keeps_the_old_model(trained, tiny_corpus, tmp_path, monkeypatch):
    rec, folder = trained
    d = _copy(folder, tmp_path, 'model'); paths = list(tiny_corpus.path[:4])
    before = CNNRecognizer.load(d).predict_proba_batch(paths)[0]
    def broken(tensors, filename, metadata=None):       # writes half a file, then the disk is full
        Path(filename).write_bytes(b'partial'); raise OSError('No space left on device')
    monkeypatch.setattr(ser_kit.cnn, 'save_file', broken)
    with pytest.raises(OSError, match='No space'): rec.save(d)
    np.testing.assert_array_equal(CNNRecognizer.load(d).predict_proba_batch(paths)[0], before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model']               # no half-written folder left behind


def test_save_refuses_to_replace_a_user_folder(trained, tmp_path):
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'notes.txt').write_text('keep me')
    with pytest.raises(Exception, match='not a ser_kit model'): trained[0].save(tmp_path / 'mine')
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'keep me'


# ---- models saved by ser_kit 0.1.0 ---------------------------------------------------------------------------------
def test_v010_cnn_loads_and_predicts_the_same(demo):
    rec = load_model(FIXTURES / 'cnn')
    assert isinstance(rec, CNNRecognizer) and rec.arch == 'cnn2d' and rec.labels == ['neutral', 'happy', 'sad', 'angry']
    exp = json.loads((FIXTURES / 'expected.json').read_text())['cnn']
    clips = sorted(demo.path)[:3]                       # expected.json: the first three demo-corpus files by path
    want = np.array([[exp[Path(c).name][l] for l in rec.labels] for c in clips])
    np.testing.assert_allclose(rec.predict_proba_batch(clips)[0], want, atol=1e-4)
    assert list(rec.history_.columns[:6]) == list(HISTORY_COLUMNS) and rec.val_speakers_ == ['02']


def test_v010_cnn_needs_its_checksum(tmp_path):
    d = _copy(FIXTURES / 'cnn', tmp_path, 'a'); _edit(d, weights_sha256=None)      # deleting it must not skip the check
    with pytest.raises(CheckpointError, match='retrain it') as e: CNNRecognizer.load(d)
    assert 'ser_kit.json' in str(e.value) and '--model cnn' in str(e.value)
    d = _copy(FIXTURES / 'cnn', tmp_path, 'b'); w = d / 'model.safetensors'; b = bytearray(w.read_bytes()); b[-1] ^= 1
    w.write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match='SHA-256') as e: CNNRecognizer.load(d)
    assert 'model.safetensors' in str(e.value)


def test_importing_the_cnn_does_not_import_the_classical_model():
    code = "import ser_kit.cnn, sys; assert 'ser_kit.classical' not in sys.modules, 'ser_kit.classical imported'"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---- device handling -----------------------------------------------------------------------------------------------
def test_cpu_fallback_when_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert default_device() == 'cpu' and amp_dtype(default_device()) is None
    X = frames(8, 60).numpy(); y = np.arange(8) % 2
    m = build_model('crnn', 2, channels=(8, 8), hidden=8)
    h = train_model(m, FrameDataset(X, y), (X, y), epochs=1, batch_size=4)   # device=None -> cpu
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
    train_model(m, FrameDataset(X, y), (X, y), epochs=1, batch_size=4, device='cuda')
    assert predict_logits(m, X).shape == (8, 2)


# ---- speaker-adaptive input ----------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def adaptive(tiny_corpus, tmp_path_factory):
    "A speaker-adaptive CNN, one network, two epochs, saved."
    rec = CNNRecognizer(arch='resnet1d', epochs=2, batch_size=8, arch_params=SMALL, features=FEAT, n_jobs=1,
                        val_speakers=['03'], augment={}, adapt='speaker')
    rec.fit(tiny_corpus)
    return rec, rec.save(tmp_path_factory.mktemp('ckpt') / 'cnn_adaptive')


def uses_speakers_never_labels(rec, corpus):
    "The same predictions when the labels are shuffled; other ones when the clips are grouped otherwise."
    df = corpus.sample(frac=1, random_state=0).reset_index(drop=True)
    P1, _, _ = rec.predict_proba_batch(list(df.path), list(df.speaker))
    shuffled = df.assign(emotion=df.emotion.sample(frac=1, random_state=1).to_numpy())    # labels are never read
    P2, _, _ = rec.predict_proba_batch(list(shuffled.path), list(shuffled.speaker))
    np.testing.assert_allclose(P1, P2)
    P3, _, _ = rec.predict_proba_batch(list(df.path), ['x'] * len(df))                    # other speaker groups
    assert not np.allclose(P1, P3)


def single_clip_gets_the_average_speaker(rec, corpus):
    "One clip of an unknown speaker is predicted as one clip of a named speaker: against the average training voice."
    p = corpus.path.iloc[0]
    alone, _, _ = rec.predict_proba_batch([p])                                   # unknown speaker, heard once
    known, _, _ = rec.predict_proba_batch([p], ['someone'])
    np.testing.assert_allclose(alone, known)
    assert np.isfinite(alone).all() and rec.predict([p])[0] in rec.labels


def test_adaptive_cnn_uses_speakers_never_labels(adaptive, tiny_corpus):
    rec, _ = adaptive
    assert rec.adaptation() == 'speaker-adaptive (band means)' and rec.band_mean_.shape == (n_bands(FEAT),)
    assert rec.networks[0].front.norm == 'level'
    uses_speakers_never_labels(rec, tiny_corpus)


def test_adaptive_cnn_single_clip_gets_the_average_speaker(adaptive, tiny_corpus):
    single_clip_gets_the_average_speaker(adaptive[0], tiny_corpus)


def test_adaptive_cnn_round_trips(adaptive, tiny_corpus):
    rec, folder = adaptive; back = CNNRecognizer.load(folder)
    assert back.adapt == 'speaker' and np.allclose(back.band_mean_, rec.band_mean_, atol=1e-4)
    paths, spk = list(tiny_corpus.path[:8]), list(tiny_corpus.speaker[:8])
    np.testing.assert_allclose(back.predict_proba_batch(paths, spk)[0], rec.predict_proba_batch(paths, spk)[0],
                               atol=1e-4)


def test_adaptive_cnn_without_band_means_is_refused(adaptive, tmp_path):
    import json, shutil
    _, folder = adaptive; bad = tmp_path / 'm'; shutil.copytree(folder, bad)
    d = json.loads((bad / 'ser_kit.json').read_text()); d.pop('band_mean')
    d['description_sha256'] = description_digest(d); (bad / 'ser_kit.json').write_text(json.dumps(d))   # re-sealed
    with pytest.raises(CheckpointError): CNNRecognizer.load(bad)       # the manifest no longer matches, or no band_mean


def test_adapt_setting_is_checked():
    with pytest.raises(SettingError, match='adapt must be one of z, em, speaker or None'): CNNRecognizer(adapt='zz')
    assert CNNRecognizer(adapt='none').adapt is None and CNNRecognizer(adapt='none', speaker_bn=None).adaptation() == 'none'
    assert CNNRecognizer().adapt == 'em'                                # the default: the speaker-normalised classifier


# ---- the classifier on speaker-normalised network vectors (the default, adapt='em') --------------------------------
def test_head_uses_speakers_never_labels(trained, tiny_corpus):
    rec, _ = trained
    C = SMALL['channels'][-1]   # 2 networks x (the pooled 2C, then the stem and 4 residual blocks: mean and sd of C each)
    assert rec.norm_.method == 'em' and rec.head_['coef'].shape == (2, 2 * (2 * C + 5 * 2 * C))
    assert rec.norm_.balance == HEAD_BALANCE                            # the E-step hedged toward a balanced speaker
    uses_speakers_never_labels(rec, tiny_corpus)


def test_head_single_clip_gets_the_average_speaker(trained, tiny_corpus):
    single_clip_gets_the_average_speaker(trained[0], tiny_corpus)


def test_head_round_trips(trained, tiny_corpus):
    rec, folder = trained; back = CNNRecognizer.load(folder)
    assert back.adapt == 'em' and back.head_data_ is None
    for k in rec.head_: np.testing.assert_allclose(back.head_[k], rec.head_[k])
    np.testing.assert_allclose(back.norm_.mu_, rec.norm_.mu_)
    assert back.norm_.balance == rec.norm_.balance == HEAD_BALANCE          # the E-step's hedge is saved too
    paths, spk = list(tiny_corpus.path[:8]), list(tiny_corpus.speaker[:8])
    np.testing.assert_allclose(back.predict_proba_batch(paths, spk)[0], rec.predict_proba_batch(paths, spk)[0],
                               atol=1e-5)


@pytest.mark.parametrize('damage', ['drop head', 'short coef', 'nan scale', 'wrong width'])
def test_damaged_head_is_refused(trained, tmp_path, damage):
    _, folder = trained; bad = tmp_path / 'm'; shutil.copytree(folder, bad)
    d = json.loads((bad / 'ser_kit.json').read_text()); h = d['head']
    if damage == 'drop head': d.pop('head')
    elif damage == 'short coef': h['coef'] = h['coef'][:1]
    elif damage == 'nan scale': h['scale'] = [float('nan')] * len(h['scale'])
    else:
        for k in ('mean', 'scale'): h[k] = h[k][:-1]
        h['coef'] = [r[:-1] for r in h['coef']]
        for k in ('mu_', 'tau2_', 'sd_', 's2w_'): h['norm'][k] = h['norm'][k][:-1]
        h['norm']['M_'] = [r[:-1] for r in h['norm']['M_']]
    d['description_sha256'] = description_digest(d); (bad / 'ser_kit.json').write_text(json.dumps(d))   # re-sealed
    with pytest.raises(CheckpointError): CNNRecognizer.load(bad)


def test_head_without_leaves_speakers_out_then_restores(trained, tiny_corpus, monkeypatch):
    rec, _ = trained; paths = list(tiny_corpus.path[:6]); before = rec.predict_proba_batch(paths)[0]
    seen = []; real = CNNRecognizer._fit_head
    monkeypatch.setattr(CNNRecognizer, '_fit_head', lambda self, keep=None: (seen.append(keep), real(self, keep))[1])
    voice = rec.head_data_['voice']
    with rec.head_without(['03']):
        assert not np.allclose(rec.predict_proba_batch(paths)[0], before)
    np.testing.assert_array_equal(seen[0], voice != '03'); assert (voice == '03').any()
    np.testing.assert_allclose(rec.predict_proba_batch(paths)[0], before)             # restored


def test_loaded_head_warns_that_it_heard_every_speaker(trained):
    back = CNNRecognizer.load(trained[1])
    with pytest.warns(UserWarning, match='keeps no training vectors'):
        with back.head_without(['03']): pass


def test_z_head_trains_predicts_and_round_trips(tiny_corpus, tmp_path):
    rec = CNNRecognizer(arch='resnet1d', epochs=1, batch_size=8, arch_params=SMALL, features=FEAT, n_jobs=1,
                        val_speakers=['03'], augment={}, n_models=1, adapt='z').fit(tiny_corpus)
    P, ok, _ = rec.predict_proba_batch(list(tiny_corpus.path), list(tiny_corpus.speaker))
    assert rec.adaptation() == 'speaker-adaptive (z, network vectors)' and np.allclose(P.sum(1), 1, atol=1e-5)
    back = CNNRecognizer.load(rec.save(tmp_path / 'z_model'))
    assert rec.norm_.method == back.norm_.method == 'z'
    paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    np.testing.assert_allclose(back.predict_proba_batch(paths, spk)[0], P, atol=1e-5)


def test_prediction_follows_the_device_setting(trained, tiny_corpus, monkeypatch):
    "Prediction runs where `device` (default: automatic) says; without a GPU that is the CPU."
    rec, _ = trained; seen = []
    real = ser_kit.cnn.predict_logits
    def spy(net, X, device=None, **k): seen.append(device); return real(net, X, device=device, **k)
    monkeypatch.setattr(ser_kit.cnn, 'predict_logits', spy)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    rec.predict_proba_batch(list(tiny_corpus.path[:2]))
    assert seen and set(seen) == {'cpu'}


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_gpu_prediction(trained, tiny_corpus):
    rec, _ = trained; rec.device = 'cuda'
    try: P, _, _ = rec.predict_proba_batch(list(tiny_corpus.path[:4]))
    finally: rec.device = None
    assert np.isfinite(P).all() and next(rec.networks[0].parameters()).device.type == 'cuda'


def test_mfcc_input_gets_no_db_augmentation(tiny_corpus, monkeypatch):
    "Gain, noise power and mel-axis stretching assume log-mel dB input; an MFCC model trains without them."
    seen = []
    real = ser_kit.cnn.train_model
    def spy(net, ds, val, settings, *a, **k): seen.append(dict(settings.augment)); return real(net, ds, val, settings, *a, **k)
    monkeypatch.setattr(ser_kit.cnn, 'train_model', spy)
    CNNRecognizer(epochs=1, batch_size=8, arch_params=SMALL, features=dict(FEAT, kind='mfcc', n_mfcc=20), n_jobs=1,
                  val_speakers=['03']).fit(tiny_corpus)
    assert seen and not set(seen[0]) & {'gain', 'noise', 'pitch'} and seen[0]['specaug']


# ---- speed-perturbed training speakers ------------------------------------------------------------------------------
def test_speed_copies_are_new_speakers_and_validation_stays_real(tiny_corpus, tmp_path, monkeypatch):
    "Each training clip comes back once per factor as '<speaker>x<factor>'; no copy of a validation speaker is trained."
    rec = CNNRecognizer(arch='resnet1d', epochs=1, batch_size=8, arch_params=SMALL, features=FEAT, n_jobs=1,
                        val_speakers=['03'], augment={}, adapt='speaker', speeds=(0.9, 1.1))
    seen = {}
    real_train = ser_kit.cnn.train_model
    def spy(net, train_ds, val, *a, **k):
        seen['train'], seen['val'] = len(train_ds), len(val[1])
        return real_train(net, train_ds, val, *a, **k)
    monkeypatch.setattr(ser_kit.cnn, 'train_model', spy)
    rec.fit(tiny_corpus)
    n_val = int((tiny_corpus.speaker.astype(str) == '03').sum()); n_tr = len(tiny_corpus) - n_val
    assert seen == dict(train=3 * n_tr, val=n_val)
    tr = tiny_corpus[tiny_corpus.speaker.astype(str) != '03']
    copies = rec._speed_copies(tr)
    assert [len(y) for _, y, _, _ in copies] == [n_tr, n_tr] and copies[0][2][0] == f"{tr.speaker.iloc[0]}x0.9"
    assert copies[0][3][0] == str(tr.speaker.iloc[0])                # each copy's real voice, for the classifier
    X0 = cached_frames(tr[:1], FEAT)[0]; X1 = copies[1][0][:1]       # the same clip, as heard and 10 % faster
    assert X0.shape == X1.shape and not np.allclose(X0, X1)
    back = CNNRecognizer.load(rec.save(tmp_path / 'm'))
    assert back.speeds == [0.9, 1.1] and back.settings()['speeds'] == [0.9, 1.1]


def test_speed_factors_are_checked():
    for bad in ((1.0,), (0.3,), (0.9, 2.5)):
        with pytest.raises(SettingError, match='speeds'): CNNRecognizer(speeds=bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks a machine without a GPU')
def test_a_model_saved_on_a_gpu_predicts_on_a_cpu(trained, tiny_corpus, tmp_path):
    "A model trained with device='cuda' (Kaggle, Colab) records it; loaded on a laptop it runs on the CPU."
    rec, folder = trained
    d = _copy(folder, tmp_path); cfg = json.loads((d / 'ser_kit.json').read_text())
    _edit(d, training=dict(cfg['training'], device='cuda'))
    gpu = load_model(d); assert gpu.device == 'cuda'
    clips = list(tiny_corpus.path[:3])
    np.testing.assert_allclose(gpu.predict_proba_batch(clips)[0], rec.predict_proba_batch(clips)[0], atol=1e-5)


@pytest.mark.parametrize('field,value', [('features', 'seconds'), ('training', 'tta')])
def test_a_description_asking_for_absurd_memory_is_refused(trained, tmp_path, field, value):
    d = _copy(trained[1], tmp_path); cfg = json.loads((d / 'ser_kit.json').read_text())
    if field in cfg and value in cfg[field]: _edit(d, **{field: dict(cfg[field], **{value: 1e12 if value == 'seconds' else 10**9})})
    else: pytest.skip(f'{field}.{value} not in this description')
    from ser_kit.models import ModelFileError
    with pytest.raises(ModelFileError, match="more memory|damaged|at most 64"): load_model(d)
