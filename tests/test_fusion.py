"Fusion of the classical model and the CNN: the weighted mean, one checked folder, atomic saves, 0.1.0 folders."
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf, torch
from ser_kit.fusion import *
from ser_kit.data import SettingError
from ser_kit.models import CheckpointError, load_model, make_model, folder_manifest, sha256_file

torch.set_num_threads(1)
FEAT = dict(seconds=1.0, crop=0.6)
CNN = dict(epochs=1, batch_size=8, arch='crnn', arch_params=dict(channels=(8, 8), hidden=8), features=FEAT,
           val_speakers=['03'], augment={})
FIXTURES = Path(__file__).parent / 'fixtures' / 'v0.1.0'


@pytest.fixture(scope='module')
def trained(tiny_corpus, tmp_path_factory):
    "A fusion trained in one call with flat CNN settings, and its saved folder."
    rec = FusionRecognizer(weight=0.25, n_jobs=1, **CNN).fit(tiny_corpus)
    return rec, rec.save(tmp_path_factory.mktemp('fusion') / 'model')


def test_importing_fusion_imports_no_member():
    code = ("import ser_kit.fusion, sys; bad = [m for m in ('ser_kit.classical', 'ser_kit.cnn', 'torch') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_fit_makes_both_members_through_the_registry(trained):
    rec, _ = trained
    assert [m.model_type for m in rec.members] == ['classical', 'cnn']
    assert rec.members[1].epochs == 1 and rec.members[1].arch == 'crnn' and rec.members[0].n_jobs == 1
    assert rec.labels == rec.members[0].labels == rec.members[1].labels == ['neutral', 'angry']
    s = rec.settings()
    assert (s['weight'], s['n_jobs'], s['progress'], s['cnn']['epochs']) == (0.25, 1, False, 1)


def test_fused_is_the_weighted_mean(trained, tiny_corpus, tmp_path):
    rec, _ = trained; classical, cnn = rec.members
    paths = list(tiny_corpus.path[:4]) + [str(tmp_path / 'missing.wav')]
    P, ok, sk = rec.predict_proba_batch(paths)
    assert ok == paths[:4] and list(sk.path) == [paths[-1]]           # the unreadable file is reported, not fatal
    np.testing.assert_allclose(P, 0.75 * classical.predict_proba_batch(ok)[0] + 0.25 * cnn.predict_proba_batch(ok)[0], atol=1e-6)
    np.testing.assert_allclose(P.sum(1), 1, atol=1e-5)
    again = FusionRecognizer.from_models(classical, cnn, weight=0.25)
    np.testing.assert_array_equal(again.predict_proba_batch(ok)[0], P)


def test_bad_settings_refused(trained, tmp_path):
    rec, _ = trained
    with pytest.raises(SettingError, match='between 0 and 1'): FusionRecognizer(weight=1.5)
    with pytest.raises(SettingError, match='epochs must be at least 1'): FusionRecognizer(epochs=0)
    with pytest.raises(SettingError, match='not a setting'): FusionRecognizer(classical=dict(epochs=3))
    with pytest.raises(CheckpointError, match='ser_kit.json'): FusionRecognizer.load(tmp_path)
    other = make_model('cnn'); other.labels = ['happy', 'sad']
    with pytest.raises(SettingError, match='different emotions'): FusionRecognizer.from_models(rec.members[0], other)
    with pytest.raises(RuntimeError, match='not trained'): FusionRecognizer().save(tmp_path / 'x')
    assert isinstance(make_model('fusion', epochs=2), FusionRecognizer)


def test_round_trip(trained, tiny_corpus):
    rec, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == ['classical.skops', 'cnn', 'ser_kit.json']
    desc = json.loads((folder / 'ser_kit.json').read_text())
    assert desc['model_type'] == 'fusion' and desc['weight'] == 0.25 and desc['labels'] == rec.labels
    assert set(desc['files']) == {'classical.skops', 'cnn/model.safetensors', 'cnn/ser_kit.json'}
    again = load_model(folder)
    assert isinstance(again, FusionRecognizer) and again.weight == 0.25 and again.labels == rec.labels
    paths = list(tiny_corpus.path[:5])
    np.testing.assert_array_equal(again.predict_proba_batch(paths)[0], rec.predict_proba_batch(paths)[0])
    assert again.settings() == json.loads(json.dumps(rec.settings()))       # settings round-trip


def _copy(folder, tmp_path, name='copy'):
    d = tmp_path / name; shutil.copytree(folder, d); return d


def _edit(d, **changes):
    "Change fields of ser_kit.json; a change to None deletes the field."
    cfg = json.loads((d / 'ser_kit.json').read_text()) | changes
    (d / 'ser_kit.json').write_text(json.dumps({k: v for k, v in cfg.items() if v is not None}))


@pytest.mark.parametrize('member', ['classical.skops', 'cnn/model.safetensors', 'cnn/ser_kit.json'])
def test_changed_member_refused(trained, tmp_path, member):
    d = _copy(trained[1], tmp_path); f = d / member; b = bytearray(f.read_bytes()); b[-2] ^= 1; f.write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match='SHA-256') as e: load_model(d)
    assert member.split('/')[-1] in str(e.value)


def test_manifest_is_required(trained, tmp_path):
    d = _copy(trained[1], tmp_path, 'a'); _edit(d, files=None)
    with pytest.raises(CheckpointError, match='retrain it') as e: load_model(d)
    assert '--model fusion' in str(e.value)
    d = _copy(trained[1], tmp_path, 'b')
    _edit(d, files={k: v for k, v in folder_manifest(d).items() if k != 'classical.skops'})
    with pytest.raises(CheckpointError, match='classical.skops'): load_model(d)


def test_member_labels_must_agree(trained, tmp_path):
    d = _copy(trained[1], tmp_path, 'a'); _edit(d, labels=['angry', 'neutral'])
    with pytest.raises(CheckpointError, match='lists the emotions') as e: load_model(d)
    assert 'ser_kit.json' in str(e.value)
    d = _copy(trained[1], tmp_path, 'b'); _edit(d / 'cnn', labels=['angry', 'neutral'])      # a CNN of other labels
    _edit(d, files=folder_manifest(d))                                                        # ... recorded consistently
    with pytest.raises(CheckpointError, match='classical.skops knows') as e: load_model(d)
    assert str(d / 'cnn') in str(e.value)


def test_interrupted_save_keeps_the_old_model(trained, tiny_corpus, tmp_path, monkeypatch):
    import ser_kit.cnn
    rec, folder = trained
    d = _copy(folder, tmp_path, 'model'); paths = list(tiny_corpus.path[:4])
    before = load_model(d).predict_proba_batch(paths)[0]
    def broken(path, cnn):                         # the classical member is written, then the CNN's save fails
        Path(path).mkdir(); (Path(path) / 'model.safetensors').write_bytes(b'partial'); raise OSError('No space left on device')
    monkeypatch.setattr(ser_kit.cnn, 'write_checkpoint', broken)
    with pytest.raises(OSError, match='No space'): rec.save(d)
    np.testing.assert_array_equal(load_model(d).predict_proba_batch(paths)[0], before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model']                      # no half-written folder left


# ---- models saved by ser_kit 0.1.0 ---------------------------------------------------------------------------------
def test_v010_fusion_loads_and_predicts_the_same(demo):
    rec = load_model(FIXTURES / 'fusion')
    assert isinstance(rec, FusionRecognizer) and rec.weight == 0.5
    exp = json.loads((FIXTURES / 'expected.json').read_text())['fusion']
    clips = sorted(demo.path)[:3]                       # expected.json: the first three demo-corpus files by path
    want = np.array([[exp[Path(c).name][l] for l in rec.labels] for c in clips])
    np.testing.assert_allclose(rec.predict_proba_batch(clips)[0], want, atol=1e-4)


def test_v010_fusion_members_keep_their_checks(tmp_path):
    d = _copy(FIXTURES / 'fusion', tmp_path); _edit(d / 'cnn', weights_sha256=None)
    with pytest.raises(CheckpointError, match='retrain it'): load_model(d)
    d = _copy(FIXTURES / 'fusion', tmp_path, 'b'); _edit(d, labels=['sad', 'angry'])
    with pytest.raises(CheckpointError, match='lists the emotions'): load_model(d)
