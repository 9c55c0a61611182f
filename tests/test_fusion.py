"Fusion of the classical model and the CNN: tuned on validation speakers, calibrated, decoded once, one checked folder."
import json, shutil, subprocess, sys
from collections import Counter
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf, torch
from ser_kit.fusion import *
from ser_kit.data import SettingError
from ser_kit.models import CheckpointError, load_model, make_model, folder_manifest, sha256_file, description_digest

torch.set_num_threads(1)
FEAT = dict(seconds=1.0, crop=0.6)
CNN = dict(epochs=1, batch_size=8, arch='crnn', arch_params=dict(channels=(8, 8), hidden=8), features=FEAT,
           val_speakers=['03'], augment={})
FIXTURES = Path(__file__).parent / 'fixtures' / 'v0.1.0'


@pytest.fixture(scope='module')
def trained(tiny_corpus, tmp_path_factory):
    "A fusion of fixed weight trained in one call with flat CNN settings, and its saved folder."
    rec = FusionRecognizer(weight=0.25, pool='linear', n_jobs=1, **CNN).fit(tiny_corpus)
    return rec, rec.save(tmp_path_factory.mktemp('fusion') / 'model')


@pytest.fixture(scope='module')
def tuned(trained, tiny_corpus, tmp_path_factory):
    "A fusion whose weight is tuned (the default), around the CNN of `trained`, and its saved folder."
    rec = FusionRecognizer(n_jobs=1, **CNN).fit_with_cnn(trained[0].members[1], tiny_corpus)
    return rec, rec.save(tmp_path_factory.mktemp('tuned') / 'model')


def record_reads(monkeypatch) -> list:
    "Every path any ser_kit module decodes from now on (each module's `load_audio` wrapped)."
    import ser_kit.data
    real, seen = ser_kit.data.load_audio, []
    def counting(path, *args, **kw): seen.append(str(path)); return real(path, *args, **kw)
    for name, module in list(sys.modules.items()):
        if name.startswith('ser_kit') and getattr(module, 'load_audio', None) is real:
            monkeypatch.setattr(module, 'load_audio', counting)
    return seen


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


def test_fused_is_the_calibrated_weighted_mean(trained, tiny_corpus, tmp_path):
    rec, _ = trained; classical, cnn = rec.members
    assert rec.weight == rec.weight_ == 0.25 and rec.temperature_ > 0      # a fixed weight; the temperature is fitted
    paths = list(tiny_corpus.path[:4]) + [str(tmp_path / 'missing.wav')]
    P, ok, sk = rec.predict_proba_batch(paths)
    assert ok == paths[:4] and list(sk.path) == [paths[-1]]           # the unreadable file is reported, not fatal
    mean = 0.75 * classical.predict_proba_batch(ok)[0] + 0.25 * cnn.predict_proba_batch(ok)[0]
    np.testing.assert_allclose(P, calibrate(mean, rec.temperature_), atol=1e-6)
    np.testing.assert_allclose(P.sum(1), 1, atol=1e-6)
    again = FusionRecognizer.from_models(classical, cnn, weight=0.25, pool='linear')   # fixed weight, temperature 1
    assert (again.weight_, again.temperature_, again.validation_) == (0.25, 1.0, None)
    np.testing.assert_allclose(again.predict_proba_batch(ok)[0], mean, atol=1e-6)


def test_the_default_pool_is_log_linear(trained, tiny_corpus):
    classical, cnn = trained[0].members; ok = list(tiny_corpus.path[:4])
    rec = FusionRecognizer.from_models(classical, cnn, weight=0.25)
    assert rec.pool == FusionRecognizer().pool == 'log'
    members = [classical.predict_proba_batch(ok)[0], cnn.predict_proba_batch(ok)[0]]
    np.testing.assert_allclose(rec.predict_proba_batch(ok)[0], pool_probs(members, [0.75, 0.25], 'log'), atol=1e-6)


def test_open_weight_must_be_tuned_before_use(trained, tiny_corpus, tmp_path):
    classical, cnn = trained[0].members
    rec = FusionRecognizer.from_models(classical, cnn, weight=None)
    with pytest.raises(RuntimeError, match='not chosen yet'): rec.predict_proba_batch(list(tiny_corpus.path[:2]))
    with pytest.raises(RuntimeError, match='not chosen yet'): rec.save(tmp_path / 'm')
    rec.tune(tiny_corpus[tiny_corpus.speaker == '03'])
    assert rec.weight_ in WEIGHT_GRID and rec.temperature_ > 0 and rec.validation_['speakers'] == ['03']

def test_each_file_is_decoded_once(trained, tiny_corpus, monkeypatch):
    rec, _ = trained; paths = list(tiny_corpus.path[:5])
    seen = record_reads(monkeypatch)
    P, ok, _ = rec.predict_proba_batch(paths, speakers=list(tiny_corpus.speaker[:5]))
    assert ok == paths and Counter(seen) == {p: 1 for p in paths}       # both members read the same decoded clips
    seen.clear(); rec.predict(paths[:1])
    assert seen == paths[:1]


def test_weight_curve_and_choice():
    y = np.array([0, 0, 1, 1])
    right, wrong = np.eye(2)[y] * 0.8 + 0.1, np.eye(2)[1 - y] * 0.8 + 0.1
    curve = weight_curve(right, wrong, y)
    assert list(curve.weight) == list(WEIGHT_GRID) and curve.uar.iloc[0] == 1 and curve.uar.iloc[-1] == 0
    assert choose_weight(curve) == 0.0 and choose_weight(weight_curve(wrong, right, y)) == 1.0
    curve = pd.DataFrame(dict(weight=[0.2, 0.5, 0.8], uar=[0.9, 0.9, 0.7], log_lik=[-0.3, -0.5, -0.1]))
    assert choose_weight(curve) == 0.8                                  # the best log-likelihood, not the best UAR
    ties = pd.DataFrame(dict(weight=[0.2, 0.5, 0.8], uar=[0.8, 0.9, 0.7], log_lik=[-0.3, -0.3, -0.5]))
    assert choose_weight(ties) == 0.5                                   # equal log-likelihoods: the better UAR


def test_temperature_minimises_the_nll_and_keeps_the_argmax():
    rng = np.random.default_rng(0); y = rng.integers(0, 3, 200)
    logits = 3 * np.eye(3)[y] + rng.normal(0, 1.5, (200, 3))           # informative, over-confident at T = 1
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    T = fit_temperature(P, y); nll = lambda t: -log_likelihood(calibrate(P, t), y)
    assert T > 0 and nll(T) <= min(nll(1.0), nll(T * 1.2), nll(T / 1.2)) + 1e-9
    Q = calibrate(P, T)
    np.testing.assert_allclose(Q.sum(1), 1, atol=1e-9); assert (Q.argmax(1) == P.argmax(1)).all()
    np.testing.assert_array_equal(calibrate(P, 1.0), P)
    assert fit_temperature(np.c_[[.6, .4, .6, .4], [.4, .6, .4, .6]], [0, 1, 0, 1]) < 1    # right, under-confident
    flat = np.full((4, 2), 0.5); np.testing.assert_allclose(calibrate(flat, 0.3), flat)


def _amplitude_members(monkeypatch, classical_right:dict, cnn_right:dict):
    "Replace both members' `predict_proba_audio`: P(true emotion) per emotion, the emotion read from the loudness."
    import ser_kit.classical, ser_kit.cnn
    def fake(p_true):
        def predict_proba_audio(self, clips, speakers=None):
            loud = np.array([np.sqrt(np.mean(np.square(c))) > 0.2 for c in clips])       # tiny corpus: angry is loud
            p = np.where(loud, p_true['angry'], p_true['neutral'])
            return np.where(loud[:, None], np.c_[1 - p, p], np.c_[p, 1 - p])          # labels: neutral, angry
        return predict_proba_audio
    monkeypatch.setattr(ser_kit.classical.EmotionRecognizer, 'predict_proba_audio', fake(classical_right))
    monkeypatch.setattr(ser_kit.cnn.CNNRecognizer, 'predict_proba_audio', fake(cnn_right))


@pytest.mark.parametrize('classical_right, cnn_right, weight', [
    (dict(neutral=0.9, angry=0.4), dict(neutral=0.45, angry=0.7), 0.35),   # each right where the other is not
    (dict(neutral=0.4, angry=0.4), dict(neutral=0.8, angry=0.8), 1.0),     # the CNN better everywhere
    (dict(neutral=0.9, angry=0.9), dict(neutral=0.3, angry=0.6), 0.0)])    # the classical model better everywhere
def test_weight_is_chosen_on_validation(trained, tiny_corpus, monkeypatch, classical_right, cnn_right, weight):
    _amplitude_members(monkeypatch, classical_right, cnn_right)
    rec = FusionRecognizer(pool='linear', n_jobs=1, **CNN).fit_with_cnn(trained[0].members[1], tiny_corpus)
    v = rec.validation_
    assert rec.weight is None and rec.weight_ == weight != 0.5 and v['tuned'] and v['weight'] == weight
    assert v['speakers'] == ['03'] and v['clips'] == 6 and v['uar'] == 1.0
    assert choose_weight(pd.DataFrame(v['curve'])) == weight and rec.temperature_ > 0
    fixed = FusionRecognizer(weight=0.5, n_jobs=1, **CNN).fit_with_cnn(trained[0].members[1], tiny_corpus)
    assert fixed.weight_ == 0.5 and not fixed.validation_['tuned']          # a number is kept, not tuned


def _tones(root:Path, speakers) -> pd.DataFrame:
    "Two emotions x 2 one-second tones per speaker, all in the folder `root` (pitch and loudness follow the emotion)."
    t, rng, rows = np.arange(16000) / 16000, np.random.default_rng(1), []
    for spk in speakers:
        for emo, f0, amp in (('neutral', 140, 0.1), ('angry', 260, 0.5)):
            for k in range(2):
                y = amp * np.sin(2 * np.pi * (f0 + 10 * k + 5 * int(spk)) * t) + 0.01 * rng.standard_normal(16000)
                p = root / f'{spk}_{emo}_{k}.wav'; sf.write(p, y.astype(np.float32), 16000)
                rows.append(dict(path=str(p), corpus='custom', speaker=spk, emotion=emo, gender='mf'[int(spk) % 2]))
    return pd.DataFrame(rows)


def test_fit_reads_only_training_rows(tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))          # nothing cached: every clip is read
    corpus = _tones(tmp_path, ['01', '02', '03', '04', '05'])             # one folder; speaker 05 is the test side
    train = corpus[corpus.speaker != '05'].reset_index(drop=True)
    seen = record_reads(monkeypatch)
    rec = FusionRecognizer(n_jobs=1, **{**CNN, 'val_speakers': None}).fit(train)
    assert seen and set(seen) <= set(train.path)                          # no clip of the test speaker is read
    assert set(rec.validation_['speakers']) < set(train.speaker) and '05' not in rec.validation_['speakers']
    assert rec.validation_['speakers'] == rec.members[1].val_speakers_
    assert rec.members[0].samples_by_class().sum() == len(train)          # the classical model ends on all of them


def test_tuned_fusion_calibrated_and_described(tuned, tiny_corpus):
    rec, folder = tuned
    assert rec.weight is None and rec.weight_ in WEIGHT_GRID and rec.temperature_ > 0
    v = rec.validation_
    assert v['speakers'] == ['03'] and v['clips'] == 6 and set(v['curve']) == {'weight', 'uar', 'log_lik'}
    assert v['log_lik_calibrated'] >= v['log_lik'] - 1e-9                 # the temperature never makes it worse
    P = rec.predict_proba_batch(list(tiny_corpus.path))[0]
    np.testing.assert_allclose(P.sum(1), 1, atol=1e-6)
    desc = json.loads((folder / 'ser_kit.json').read_text())
    assert (desc['weight'], desc['temperature'], desc['training']['weight']) == (rec.weight_, rec.temperature_, None)
    assert desc['validation'] == json.loads(json.dumps(v)) and 'tuned' in repr(rec)


def test_tuned_round_trip(tuned, tiny_corpus):
    rec, folder = tuned; again = load_model(folder); paths = list(tiny_corpus.path[:5])
    assert (again.weight, again.weight_, again.temperature_) == (None, rec.weight_, rec.temperature_)
    assert again.validation_ == json.loads(json.dumps(rec.validation_))
    np.testing.assert_allclose(again.predict_proba_batch(paths)[0], rec.predict_proba_batch(paths)[0], atol=1e-7)


def test_folder_without_temperature_loads_with_temperature_1(tuned, tmp_path):
    d = _copy(tuned[1], tmp_path); _edit(d, temperature=None, validation=None)
    again = load_model(d)
    assert (again.weight_, again.temperature_, again.validation_) == (tuned[0].weight_, 1.0, None)
    for bad in (0.0, -1.0, 'hot'):
        d = _copy(tuned[1], tmp_path, f'bad{bad}'); _edit(d, temperature=bad)
        with pytest.raises(CheckpointError, match='temperature|not a valid'): load_model(d)


def test_bad_settings_refused(trained, tiny_corpus, tmp_path):
    rec, _ = trained
    with pytest.raises(SettingError, match='between 0 and 1'): FusionRecognizer(weight=1.5)
    assert FusionRecognizer().weight is None                                  # the default: tuned on validation
    with pytest.raises(SettingError, match="validation speakers \\['03'\\] must be some"):   # 03 is not in the data
        FusionRecognizer(n_jobs=1).fit_with_cnn(rec.members[1], tiny_corpus[tiny_corpus.speaker != '03'])
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
    assert desc['temperature'] == rec.temperature_ and desc['validation']['speakers'] == ['03']
    assert set(desc['files']) == {'classical.skops', 'cnn/model.safetensors', 'cnn/ser_kit.json'}
    again = load_model(folder)
    assert isinstance(again, FusionRecognizer) and again.weight == 0.25 and again.labels == rec.labels
    assert again.temperature_ == rec.temperature_
    paths = list(tiny_corpus.path[:5])
    np.testing.assert_array_equal(again.predict_proba_batch(paths)[0], rec.predict_proba_batch(paths)[0])
    assert again.settings() == json.loads(json.dumps(rec.settings()))       # settings round-trip


def _copy(folder, tmp_path, name='copy'):
    d = tmp_path / name; shutil.copytree(folder, d); return d


def _edit(d, **changes):
    "Change fields of ser_kit.json; a change to None deletes the field."
    cfg = json.loads((d / 'ser_kit.json').read_text()) | changes
    cfg = {k: v for k, v in cfg.items() if v is not None}; cfg['description_sha256'] = description_digest(cfg)
    (d / 'ser_kit.json').write_text(json.dumps(cfg))


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
    assert isinstance(rec, FusionRecognizer) and rec.weight == rec.weight_ == 0.5 and rec.temperature_ == 1.0
    exp = json.loads((FIXTURES / 'expected.json').read_text())['fusion']
    clips = sorted(demo.path)[:3]                       # expected.json: the first three demo-corpus files by path
    want = np.array([[exp[Path(c).name][l] for l in rec.labels] for c in clips])
    np.testing.assert_allclose(rec.predict_proba_batch(clips)[0], want, atol=1e-4)


def test_v010_fusion_members_keep_their_checks(tmp_path):
    d = _copy(FIXTURES / 'fusion', tmp_path); _edit(d / 'cnn', weights_sha256=None)
    with pytest.raises(CheckpointError, match='retrain it'): load_model(d)
    d = _copy(FIXTURES / 'fusion', tmp_path, 'b'); _edit(d, labels=['sad', 'angry'])
    with pytest.raises(CheckpointError, match='lists the emotions'): load_model(d)


def test_tuning_scores_a_cnn_classifier_that_never_heard_the_validation_speakers(trained, tiny_corpus, monkeypatch):
    "The CNN's classifier on its vectors is refitted without the validation speakers while the weight is tuned."
    from ser_kit.cnn import CNNRecognizer
    cnn = trained[0].members[1]; seen = []
    real_fit, real_tune = CNNRecognizer._fit_head, FusionRecognizer.tune
    monkeypatch.setattr(CNNRecognizer, '_fit_head', lambda self, keep=None: (seen.append(('fit', keep)),
                                                                             real_fit(self, keep))[1])
    monkeypatch.setattr(FusionRecognizer, 'tune', lambda self, m: (seen.append(('tune', cnn.head_['coef'].copy())),
                                                                   real_tune(self, m))[1])
    full = cnn.head_['coef'].copy()
    FusionRecognizer(n_jobs=1, **CNN).fit_with_cnn(cnn, tiny_corpus)
    assert [s[0] for s in seen] == ['fit', 'tune'] and cnn.adapt == 'em'
    np.testing.assert_array_equal(seen[0][1], cnn.head_data_['voice'] != '03')          # validation speaker '03' left out
    assert not np.allclose(seen[1][1], full) and np.allclose(cnn.head_['coef'], full)   # tuned on that; then restored
