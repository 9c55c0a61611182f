"Wav2Vec2: offline fallback, tiny-model path, training loop, save/load, bad checkpoints, embeddings cache. CPU only, no network."
import os, sys, json, time, shutil, subprocess
os.environ['HF_HUB_OFFLINE'] = '1'  # never reach for the hub in tests
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, pytest

import torch
torch.set_num_threads(1)
import ser_kit.wav2vec2 as w
from ser_kit.data import SettingError
from ser_kit.models import ModelFileError, CheckpointError, HISTORY_COLUMNS, load_model, make_model, description_digest

FIXTURE = Path(__file__).parent / 'fixtures' / 'v0.1.0' / 'wav2vec2'


@pytest.fixture(scope='module')
def tiny_corpus(tmp_path_factory):
    "24 short RAVDESS-named clips: 3 speakers x 2 emotions x 4, two distinct sounds (no demo corpus needed)."
    root = tmp_path_factory.mktemp('w2v_corpus'); rng = np.random.default_rng(0); rows = []
    t = np.arange(int(16000 * 1.5)) / 16000
    for actor in (1, 2, 3):
        d = root / f'Actor_{actor:02d}'; d.mkdir()
        for emo, f0 in (('05', 220.0), ('04', 110.0)):  # angry: high and loud; sad: low and soft
            for k in range(4):
                y = (0.5 if emo == '05' else 0.1) * np.sin(2 * np.pi * (f0 + 10 * actor) * t) + 0.01 * rng.standard_normal(len(t))
                p = d / f"03-01-{emo}-01-{k // 2 + 1:02d}-{k % 2 + 1:02d}-{actor:02d}.wav"
                sf.write(p, y.astype(np.float32), 16000)
                rows.append(dict(path=str(p), corpus='ravdess', speaker=f'{actor:02d}', emotion='angry' if emo == '05' else 'sad',
                                 gender='male'))
    return pd.DataFrame(rows)


@pytest.fixture(scope='module')
def saved(tiny_corpus, tmp_path_factory):
    "A tiny model trained for one epoch, saved once: (recognizer, folder, its probabilities on 5 clips)."
    rec = w.Wav2Vec2Recognizer(w.TINY, epochs=1, lr=1e-3, batch_size=8).fit(tiny_corpus)
    d = rec.save(tmp_path_factory.mktemp('w2v_saved') / 'model')
    return rec, d, rec.predict_proba_batch(list(tiny_corpus.path[:5]))[0]


def copy_of(d, tmp_path, name='copy'):
    return Path(shutil.copytree(d, tmp_path / name))


def test_offline_fallback_says_so_in_one_line_once(capsys, monkeypatch):
    w.load_backbone('tiny'); capsys.readouterr()  # warm-up: transformers imports its model code on first use
    monkeypatch.setattr(w, '_tiny_notice_said', False)  # as in a fresh process
    t = time.time()
    m = w.load_backbone('facebook/wav2vec2-base', labels=['angry', 'sad'])
    lines = [l for l in capsys.readouterr().out.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ser_kit: no Wav2Vec2 weights for 'facebook/wav2vec2-base'") and 'tiny randomly initialised' in lines[0]
    assert m.config.hidden_size <= 64 and m.config.num_hidden_layers == 2 and m.config.id2label == {0: 'angry', 1: 'sad'}
    assert m.ser_kit_origin['kind'] == 'tiny'
    w.load_backbone('facebook/wav2vec2-base', num_labels=2)
    assert capsys.readouterr().out == ''  # "its scores mean nothing" is said once per process, not at every model
    with pytest.raises(OSError, match='strict=True'): w.load_backbone('facebook/wav2vec2-base', num_labels=2, strict=True)
    assert not w.hub_reachable() and time.time() - t < 5  # fails fast, no retries


def test_find_checkpoint_kinds(tmp_path):
    assert w.find_checkpoint('tiny') == ('tiny', None)
    assert w.find_checkpoint('facebook/hubert-base-ls960', kaggle_root=tmp_path) == ('hub', 'facebook/hubert-base-ls960')
    k = tmp_path / 'wav2vec2-base' / 'transformers' / 'default' / '1'; k.mkdir(parents=True)
    (k / 'config.json').write_text(json.dumps({'model_type': 'wav2vec2'}))
    assert w.find_checkpoint('facebook/wav2vec2-base', kaggle_root=tmp_path) == ('local', k)
    assert w.find_checkpoint(None, kaggle_root=tmp_path) == ('local', k)
    with pytest.raises(w.CheckpointError, match='no such folder'): w.find_checkpoint('./no/such/model')


def test_checkpoint_error_is_the_shared_model_file_error(tmp_path):
    assert w.CheckpointError is CheckpointError and issubclass(CheckpointError, ModelFileError)
    assert not hasattr(w, 'speaker_validation_split') and not hasattr(w, '_atomic_save')
    try: w.Wav2Vec2Recognizer.load(tmp_path)  # an empty folder
    except ModelFileError as e: assert str(tmp_path) in str(e)
    else: raise AssertionError('an empty folder loaded')


def test_bad_checkpoint_folders_give_clear_errors(tmp_path):
    d = tmp_path / 'ckpt'; d.mkdir()
    with pytest.raises(w.CheckpointError, match=f"{d}: no config.json"): w.load_backbone(d, num_labels=2)
    (d / 'config.json').write_text('{not json')
    with pytest.raises(w.CheckpointError, match='not valid JSON'): w.load_backbone(d, num_labels=2)
    (d / 'config.json').write_text(json.dumps({'model_type': 'bert'}))
    with pytest.raises(w.CheckpointError, match="wrong architecture: model_type 'bert'"): w.load_backbone(d, num_labels=2)
    (d / 'config.json').write_text(json.dumps({'model_type': 'wav2vec2'}))
    with pytest.raises(w.CheckpointError, match='no model.safetensors'): w.load_backbone(d, num_labels=2)
    (d / 'model.safetensors').write_bytes(b'\x12garbage' * 50)
    with pytest.raises(w.CheckpointError, match=f"{d}: corrupt weights file model.safetensors"): w.load_backbone(d, num_labels=2)
    with pytest.raises(w.CheckpointError, match='no ser_kit.json'): w.Wav2Vec2Recognizer.load(d)


def test_local_folder_round_trip_and_truncated_weights(tmp_path):
    m = w.load_backbone('tiny', num_labels=3)
    m.save_pretrained(tmp_path / 'good')
    m2 = w.load_backbone(tmp_path / 'good', num_labels=3)
    assert m2.ser_kit_origin['kind'] == 'local'
    for k, v in m.state_dict().items(): assert torch.equal(v, m2.state_dict()[k])
    f = tmp_path / 'good' / 'model.safetensors'; f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2])  # truncated download
    with pytest.raises(w.CheckpointError, match='good'): w.load_backbone(tmp_path / 'good', num_labels=3)


def test_training_loop_reduces_loss_on_a_tiny_batch():
    X = np.random.default_rng(0).standard_normal((8, 16000)).astype(np.float32) * 0.1
    X[::2] *= 5  # two separable classes: loud and soft... and normalisation removes loudness, so add a tone
    X[::2] += np.sin(2 * np.pi * 300 * np.arange(16000) / 16000).astype(np.float32)
    m = w.load_backbone('tiny', num_labels=2)
    m, h = w.fine_tune(m, X, np.arange(8) % 2, epochs=8, lr=3e-3, batch_size=8, progress=False)
    assert h.train_loss.iloc[-1] < h.train_loss.iloc[0] - 0.005, h.train_loss.tolist()
    assert list(h.columns) == ['epoch', 'train_loss', 'lr', 'seconds'] and h.attrs['best_epoch'] == 8  # no validation
    assert not any(p.requires_grad for p in m.wav2vec2.feature_extractor.parameters())  # feature encoder frozen


def test_settings_are_checked_and_named_like_every_model_type():
    for bad, msg in ((dict(epochs=0), 'epochs must be at least 1'), (dict(batch_size=0), 'batch_size must be at least 1'),
                     (dict(lr=0.0), 'lr must be a finite number above 0'), (dict(lr=float('inf')), 'finite number'),
                     (dict(lr=-1e-5), 'lr must be a finite number above 0'),
                     (dict(val_fraction=1.0), 'val_fraction')):
        with pytest.raises(SettingError, match=msg): w.Wav2Vec2Recognizer(w.TINY, **bad)
    with pytest.raises(SettingError, match='epochs must be at least 1'): make_model('wav2vec2', checkpoint='tiny', epochs=0)
    s = w.Wav2Vec2Recognizer().settings()
    assert (s['progress'], s['n_jobs'], s['val_fraction'], s['val_speakers'], s['seed']) == (False, -1, 0.15, None, 0)
    assert {'checkpoint', 'epochs', 'batch_size', 'lr', 'emotions', 'balance', 'strict'} <= set(s) and 'val_share' not in s
    # a description saved with the old name of the validation share is still read
    assert w._saved_settings({'training': {'val_share': 0.2, 'epochs': 3}}, w.Wav2Vec2Recognizer) == {'val_fraction': 0.2, 'epochs': 3}


def test_tiny_model_path_fit_predict_save_load(tiny_corpus, tmp_path, capsys):
    rec = w.Wav2Vec2Recognizer(w.TINY, epochs=2, lr=1e-3, batch_size=8, progress=True).fit(tiny_corpus)
    out = capsys.readouterr().out
    for c in ('train_loss', 'val_loss', 'accuracy', 'precision', 'recall', 'f1'): assert c in out  # the per-epoch table
    assert tuple(rec.history_.columns[:6]) == HISTORY_COLUMNS and list(rec.history_.epoch) == [1, 2]
    assert rec.labels == ['sad', 'angry'] and len(rec.val_speakers_) == 1
    assert rec.history_.attrs['best_epoch'] in (1, 2)
    P, ok, skipped = rec.predict_proba_batch(list(tiny_corpus.path) + [str(tmp_path / 'missing.wav')])
    assert P.shape == (24, 2) and len(ok) == 24 and len(skipped) == 1 and np.allclose(P.sum(1), 1, atol=1e-5)
    d = rec.save(tmp_path / 'model')
    assert {'config.json', 'model.safetensors', 'ser_kit.json', 'preprocessor_config.json'} <= set(os.listdir(d))
    assert not list(d.glob('*.bin')) and not list(d.glob('*.pkl'))
    meta = json.loads((d / 'ser_kit.json').read_text())
    assert meta['model_type'] == 'wav2vec2' and meta['labels'] == ['sad', 'angry'] and meta['format_version'] == 3
    assert meta['features'] == dict(sr=16000, offset=0.6, duration=2.5) and meta['training']['epochs'] == 2
    assert set(meta['files']) == {'config.json', 'model.safetensors', 'preprocessor_config.json'}
    assert json.loads((d / 'config.json').read_text())['id2label'] == {'0': 'sad', '1': 'angry'}
    rec2 = w.Wav2Vec2Recognizer.load(d)
    assert rec2.labels == rec.labels and np.allclose(rec2.predict_proba_batch(list(tiny_corpus.path[:5]))[0], P[:5], atol=1e-5)
    assert rec2.settings() == rec.settings()  # settings round-trip through save / load
    assert tuple(rec2.history_.columns[:6]) == HISTORY_COLUMNS and rec2.history_.shape[0] == 2
    assert rec2.history_.attrs['best_epoch'] == rec.history_.attrs['best_epoch'] and rec2.val_speakers_ == rec.val_speakers_
    assert rec2.samples_by_class().sum() == 24
    assert type(load_model(d)).__name__ == 'Wav2Vec2Recognizer'


def test_validation_speakers_come_from_training(tiny_corpus):
    rec = w.Wav2Vec2Recognizer(w.TINY, epochs=1, batch_size=8, val_speakers=['02'])
    va = rec._val_mask(tiny_corpus)
    assert set(tiny_corpus.speaker[va]) == {'02'} and rec.val_speakers_ == ['02']
    with pytest.raises(SettingError, match=r"\['09'\] are not in the training data"):
        w.Wav2Vec2Recognizer(w.TINY, val_speakers=['09'])._val_mask(tiny_corpus)
    assert not w.Wav2Vec2Recognizer(w.TINY, val_fraction=0)._val_mask(tiny_corpus).any()
    assert not w.Wav2Vec2Recognizer(w.TINY)._val_mask(tiny_corpus[tiny_corpus.speaker == '01']).any()  # one speaker: none


def test_interrupted_save_keeps_the_old_model(saved, tiny_corpus, tmp_path, monkeypatch):
    rec, d0, P = saved
    d = copy_of(d0, tmp_path, 'model')
    def boom(*a, **k): raise KeyboardInterrupt('power cut')
    for target, name in ((w, 'write_description'), (type(rec.model_), 'save_pretrained')):
        with monkeypatch.context() as mp:
            mp.setattr(target, name, boom)
            with pytest.raises(KeyboardInterrupt): rec.save(d)
        assert sorted(p.name for p in tmp_path.iterdir()) == ['model']  # no half-written folder left beside it
        old = w.Wav2Vec2Recognizer.load(d)
        assert np.allclose(old.predict_proba_batch(list(tiny_corpus.path[:5]))[0], P, atol=1e-6)


def test_changed_or_unlisted_members_are_refused(saved, tmp_path):
    d = copy_of(saved[1], tmp_path, 'changed')
    (d / 'preprocessor_config.json').write_text('{}')
    with pytest.raises(CheckpointError, match='preprocessor_config.json: contents differ from the SHA-256'):
        w.Wav2Vec2Recognizer.load(d)
    d = copy_of(saved[1], tmp_path, 'no_manifest')
    meta = json.loads((d / 'ser_kit.json').read_text()); del meta['files']
    (d / 'ser_kit.json').write_text(json.dumps(meta))  # deleting the hashes must not skip the check
    with pytest.raises(CheckpointError, match='retrain'): w.Wav2Vec2Recognizer.load(d)


def test_nan_weights_are_refused(saved, tiny_corpus, tmp_path):
    rec = w.Wav2Vec2Recognizer.load(saved[1])
    with torch.no_grad(): rec.model_.classifier.weight[0, 0] = float('nan')
    rec.save(tmp_path / 'nan')  # a diverged model, faithfully saved (its manifest is valid)
    with pytest.raises(CheckpointError, match=r'model\.safetensors: .*NaN or infinite') as e:
        w.Wav2Vec2Recognizer.load(tmp_path / 'nan')
    assert '\n' not in str(e.value)
    with pytest.raises(CheckpointError, match='NaN'): load_model(tmp_path / 'nan')


def test_label_list_must_match_the_classifier(saved, tmp_path):
    d = copy_of(saved[1], tmp_path, 'labels')
    meta = json.loads((d / 'ser_kit.json').read_text()); meta['labels'] = ['sad', 'angry', 'happy']
    meta['description_sha256'] = description_digest(meta)     # re-sealed: the label check itself still holds
    (d / 'ser_kit.json').write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r'ser_kit\.json: 3 labels but the classifier has 2 outputs'):
        w.Wav2Vec2Recognizer.load(d)


def test_a_v010_model_is_refused_with_the_retrain_line():
    for load in (w.Wav2Vec2Recognizer.load, load_model):
        with pytest.raises(CheckpointError) as e: load(FIXTURE)
        msg = str(e.value)
        assert '\n' not in msg and 'retrain' in msg and '--model wav2vec2' in msg and 'ser_kit.json' in msg, msg


def test_importing_wav2vec2_does_not_import_the_classical_model():
    code = "import sys, ser_kit.wav2vec2; print('ser_kit.classical' in sys.modules)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == 'False'


def test_embeddings_are_cached_per_layer_and_probed(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))
    E, idx = w.extract_embeddings(tiny_corpus, w.TINY, progress=False)
    assert E.shape == (24, 3, 32) and list(idx) == list(tiny_corpus.index)
    files = list((tmp_path / 'cache' / 'embeddings').rglob('*.npy')); assert len(files) == 24
    assert not list((tmp_path / 'cache').rglob('*.tmp'))  # written atomically, no debris
    E2, _ = w.extract_embeddings(tiny_corpus, w.TINY, progress=False)
    assert np.array_equal(E, E2)
    bad = tiny_corpus.iloc[:2].copy(); bad.loc[bad.index[1], 'path'] = str(tmp_path / 'nope.wav')
    with pytest.warns(UserWarning, match='skipped 1 bad file'): E3, idx3 = w.extract_embeddings(bad, w.TINY, progress=False)
    assert list(idx3) == [bad.index[0]]
    t = w.probe_layers(E, tiny_corpus, folds=3)
    assert list(t.index) == [0, 1, 2] and t.uar.between(0, 1).all()


def test_train_main_for_accelerate_launch(tiny_corpus, tmp_path):
    csv = tmp_path / 'm.csv'; tiny_corpus.to_csv(csv, index=False)
    rec = w.train_main([str(csv), '--checkpoint', 'tiny', '--out', str(tmp_path / 'out'), '--epochs', '1', '--batch-size', '8'])
    assert (tmp_path / 'out' / 'model.safetensors').is_file() and rec.labels == ['sad', 'angry']


def test_prediction_runs_on_the_device_setting(tiny_corpus, monkeypatch):
    "A loaded model is moved to `device` (default: the GPU when present); without a GPU, the CPU."
    import torch
    rec = w.Wav2Vec2Recognizer(w.TINY, epochs=1, batch_size=8).fit(tiny_corpus)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    P, ok, _ = rec.predict_proba_batch(list(tiny_corpus.path[:3]))
    assert P.shape == (3, len(rec.labels)) and next(rec.model_.parameters()).device.type == 'cpu'
    assert w.Wav2Vec2Recognizer(w.TINY, device='cpu').settings()['device'] == 'cpu'


def test_augment_setting_is_checked_and_saved(tiny_corpus, tmp_path):
    assert w.Wav2Vec2Recognizer().settings()['augment'] == ()                      # off by default
    assert w.Wav2Vec2Recognizer(w.TINY, augment='noise, gain').augment == ('noise', 'gain')
    assert w.Wav2Vec2Recognizer(w.TINY, augment=['pitch', 'pitch', 'none']).augment == ('pitch',)
    with pytest.raises(SettingError, match='unknown augmentation'): w.Wav2Vec2Recognizer(w.TINY, augment='noise,echo')
    with pytest.raises(SettingError, match='unknown augmentation'):
        make_model('wav2vec2', checkpoint='tiny', augment='x')
    rec = w.Wav2Vec2Recognizer(w.TINY, epochs=1, lr=1e-3, batch_size=8, augment=('stretch', 'reverb')).fit(tiny_corpus)
    d = rec.save(tmp_path / 'model')
    assert json.loads((d / 'ser_kit.json').read_text())['training']['augment'] == ['stretch', 'reverb']
    rec2 = w.Wav2Vec2Recognizer.load(d)
    assert rec2.augment == ('stretch', 'reverb') and rec2.settings() == rec.settings()


def _counting_stand_in(calls):
    "A stand-in for `ser_kit.augment.augment_waveform` ((y, sr, kind, rng) -> array) that records its calls."
    def fake(y, sr, kind, rng):
        calls.append(kind); return np.asarray(y, np.float32) * float(rng.uniform(0.5, 2.0))
    return fake


def test_augmentation_touches_training_batches_only(tiny_corpus, monkeypatch):
    import ser_kit.augment
    calls = []
    monkeypatch.setattr(ser_kit.augment, 'augment_waveform', _counting_stand_in(calls))
    rec = w.Wav2Vec2Recognizer(w.TINY, epochs=2, lr=1e-3, batch_size=8, val_speakers=['03'], augment=('noise', 'gain'))
    rec.fit(tiny_corpus)
    n_train = int((tiny_corpus.speaker != '03').sum())
    assert len(calls) == 2 * n_train                       # every training clip, every epoch; no validation clip
    assert set(calls) == {'noise', 'gain'}                 # a random one of the chosen kinds
    rec.predict_proba_batch(list(tiny_corpus.path)); rec.score(tiny_corpus)
    assert len(calls) == 2 * n_train                       # prediction and evaluation never augment
    calls.clear()
    w.Wav2Vec2Recognizer(w.TINY, epochs=1, batch_size=8, val_fraction=0).fit(tiny_corpus)
    assert calls == []                                     # augment=() (the default): no augmentation


def test_augmented_clips_are_seeded_and_keep_their_length():
    X = (np.random.default_rng(0).standard_normal((4, 16000)) * 0.1).astype(np.float32)
    X += np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype(np.float32)
    kinds = ('noise', 'gain', 'pitch', 'stretch', 'reverb')
    a, b = w.AugmentedClips(X, [0, 1, 0, 1], kinds, seed=3), w.AugmentedClips(X, [0, 1, 0, 1], kinds, seed=3)
    c = w.AugmentedClips(X, [0, 1, 0, 1], kinds, seed=4)
    xa, xb, xc = ([d[i][0].numpy() for i in range(4)] for d in (a, b, c))
    assert all(x.shape == (16000,) for x in xa) and all(np.allclose(p, q) for p, q in zip(xa, xb))   # seeded
    assert not all(np.allclose(p, q) for p, q in zip(xa, xc))                                       # another seed
    plain = w.normalise(X)
    for kind in kinds:                                  # every real augmentation: same length, normalised, finite
        x = w.AugmentedClips(X, [0, 1, 0, 1], (kind,), seed=0)[1][0].numpy()
        assert x.shape == (16000,) and np.isfinite(x).all() and abs(x.std() - 1) < 0.01, kind
        # the clip changed, except by a gain: every clip is normalised to unit variance, which undoes a gain
        assert np.allclose(x, plain[1], atol=1e-3) == (kind == 'gain'), kind
    with pytest.raises(SettingError): w.AugmentedClips(X, [0, 1, 0, 1], ())


def test_augmented_fine_tuning_is_reproducible():
    X = (np.random.default_rng(0).standard_normal((8, 16000)) * 0.1).astype(np.float32)
    runs = [w.fine_tune(w.load_backbone('tiny', num_labels=2), X, np.arange(8) % 2, epochs=2, lr=1e-3, batch_size=4,
                        progress=False, augment=('noise', 'gain'), seed=s)[1].train_loss.tolist() for s in (0, 0, 1)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
