"The CNN's speaker batch norm and its gate: one-speaker batches, unlabelled statistics, the gate's choice, the saved twin."
import shutil
import numpy as np, pytest, torch
import ser_kit.cnn
from ser_kit.cnn import CNNRecognizer, speaker_batches, breadth
from ser_kit.data import SettingError, load_audio
from ser_kit.models import CheckpointError, load_model
from ser_kit.classical import EmotionRecognizer
from test_cnn import SMALL, FEAT, FIXTURES, _rewrite     # the CNN tests' small settings and checkpoint tampering


@pytest.fixture(scope='module')
def gated(tiny_corpus, tmp_path_factory):
    "The default `speaker_bn='gate'`: one small network of each kind, two epochs, saved."
    rec = CNNRecognizer(epochs=2, batch_size=8, arch_params=SMALL, features=FEAT, n_jobs=1, val_speakers=['03'],
                        augment={}, n_models=1, speeds=(0.9,))
    with pytest.MonkeyPatch.context() as mp:              # a gate that 2 emotions can cross: the twin is trained
        mp.setattr(ser_kit.cnn, 'GATE_BREADTH', 1.0); rec.fit(tiny_corpus)
    return rec, rec.save(tmp_path_factory.mktemp('ckpt') / 'gated')


@pytest.fixture
def open_gate(monkeypatch):
    "The tiny corpus has 6 clips of 2 emotions a speaker: let every speaker heard twice through the gate."
    monkeypatch.setattr(ser_kit.cnn, 'GATE_CLIPS', 2); monkeypatch.setattr(ser_kit.cnn, 'GATE_BREADTH', 1.0)


def test_the_setting_is_checked_and_described():
    assert CNNRecognizer().speaker_bn == 'gate' and CNNRecognizer(speaker_bn='none').speaker_bn is None
    with pytest.raises(SettingError, match="speaker_bn must be 'gate', 'both', 'always' or None"):
        CNNRecognizer(speaker_bn=True)
    assert CNNRecognizer().adaptation() == 'speaker-adaptive (em, network vectors; gated speaker batch norm)'
    assert CNNRecognizer(adapt=None, speaker_bn='always').adaptation() == 'speaker-adaptive (speaker batch norm)'


def test_training_batches_hold_one_speaker_each():
    spk = np.repeat(['a', 'b', 'c', 'ax0.9'], [70, 33, 2, 5]); rng = np.random.default_rng(1)
    batches = speaker_batches(spk, 32, rng)
    assert all(len(set(spk[b])) == 1 for b in batches) and max(map(len, batches)) <= 32
    assert sorted(i for b in batches for i in b) == list(range(len(spk)))          # every row once (none alone here)
    assert speaker_batches(spk, 32, np.random.default_rng(1)) == batches            # seeded


def test_breadth_counts_the_emotions_of_a_mix():
    assert breadth(np.eye(4)) == pytest.approx(4) and breadth(np.full((3, 8), 1 / 8)) == pytest.approx(8)
    assert breadth(np.eye(8)[[2] * 10]) == pytest.approx(1)


def test_both_network_sets_are_trained(gated):
    rec, _ = gated; twin = rec.bn_model_
    assert twin.speaker_bn == 'always' and len(twin.networks) == len(rec.networks) == 1 and twin.head_ is not None
    assert list(rec.network_histories()) == ['network 0', 'network 0 (speaker BN)']
    w, w2 = rec.networks[0].head[-1].weight, twin.networks[0].head[-1].weight
    assert w.shape == w2.shape and not torch.allclose(w, w2)                           # trained otherwise


def test_few_clips_keep_the_default_networks(gated, tiny_corpus):
    rec, _ = gated; paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    P = rec.predict_proba_batch(paths, spk)[0]                                          # 6 clips a speaker < 16
    np.testing.assert_allclose(P, rec.reading(None).predict_proba_batch(paths, spk)[0])
    assert rec.gate_['01']['clips'] == 6 and {g['networks'] for g in rec.gate_.values()} == {'default'}


def test_the_open_gate_sends_a_speaker_to_speaker_batch_norm(gated, tiny_corpus, open_gate):
    rec, _ = gated; paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    P = rec.predict_proba_batch(paths, spk)[0]
    np.testing.assert_allclose(P, rec.bn_model_.predict_proba_batch(paths, spk)[0], atol=1e-6)
    assert not np.allclose(P, rec.reading(None).predict_proba_batch(paths, spk)[0])
    assert rec.gate_['02']['networks'] == 'speaker batch norm' and rec.gate_['02']['breadth'] <= 2
    assert rec.networks_used(['02', 'nobody']) == ['speaker batch norm', 'default']
    assert rec.reading(None).networks_used(['02']) is None and EmotionRecognizer().networks_used(['02']) is None
    alone = rec.predict_proba_batch(paths[:3])[0]                                        # a clip alone: the default
    np.testing.assert_allclose(alone, rec.reading(None).predict_proba_batch(paths[:3])[0])


def test_both_reads_a_broad_speaker_by_the_mean_of_both_sets(gated, tiny_corpus, open_gate):
    rec, _ = gated; paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker); both = rec.reading('both')
    P, first = both.predict_proba_batch(paths, spk)[0], rec.reading(None).predict_proba_batch(paths, spk)[0]
    np.testing.assert_allclose(P, (first + rec.bn_model_.predict_proba_batch(paths, spk)[0]) / 2, atol=1e-6)
    assert not np.allclose(P, first) and not np.allclose(P, rec.predict_proba_batch(paths, spk)[0])
    assert both.networks_used(['02', 'nobody']) == ['both sets', 'default']
    np.testing.assert_allclose(both.predict_proba_batch(paths[:3])[0],                    # alone: the first set
                               rec.reading(None).predict_proba_batch(paths[:3])[0], atol=1e-6)
    assert both.adaptation() == 'speaker-adaptive (em, network vectors; gated speaker batch norm, both sets)'


def test_a_reading_shares_the_networks_and_is_checked(gated):
    rec, _ = gated; first = rec.reading(None)
    assert first.bn_model_ is None and rec.bn_model_ is not None and rec.reading('gate').networks is rec.networks
    with pytest.raises(SettingError, match='no speaker batch-norm networks'): first.reading('both')
    with pytest.raises(SettingError, match="reads as None, 'gate' or 'both'"): rec.reading('always')
    with pytest.raises(SettingError, match="speaker_bn='always'"): rec.bn_model_.reading(None)


def test_both_keeps_the_first_set_for_few_clips(gated, tiny_corpus):
    rec, _ = gated; paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    np.testing.assert_allclose(rec.reading('both').predict_proba_batch(paths, spk)[0],
                               rec.reading(None).predict_proba_batch(paths, spk)[0])


def test_a_both_sets_model_round_trips(gated, tiny_corpus, open_gate, tmp_path):
    both = gated[0].reading('both'); back = CNNRecognizer.load(both.save(tmp_path / 'both'))
    paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    assert back.speaker_bn == 'both' and back.bn_model_ is not None
    np.testing.assert_allclose(back.predict_proba_batch(paths, spk)[0], both.predict_proba_batch(paths, spk)[0],
                               atol=1e-5)


def test_the_gate_uses_speakers_never_labels(gated, tiny_corpus, open_gate):
    rec, _ = gated; df = tiny_corpus.sample(frac=1, random_state=0).reset_index(drop=True)
    P1 = rec.predict_proba_batch(list(df.path), list(df.speaker))[0]
    shuffled = df.assign(emotion=df.emotion.sample(frac=1, random_state=1).to_numpy())
    np.testing.assert_allclose(P1, rec.predict_proba_batch(list(shuffled.path), list(shuffled.speaker))[0])
    assert not np.allclose(P1, rec.predict_proba_batch(list(df.path), ['x'] * len(df))[0])   # other groups


def test_a_speaker_is_normalised_with_their_own_clips_only(gated, tiny_corpus):
    twin = gated[0].bn_model_; X = np.stack([ser_kit.cnn.clip_frames(load_audio(p, sr=16000), 16000, twin.features)
                                             for p in tiny_corpus.path])
    spk = tiny_corpus.speaker.to_numpy(); one = spk == '01'
    E_all, E_one = twin._embeddings(X, spk), twin._embeddings(X[one], spk[one])
    np.testing.assert_allclose(E_all[one], E_one, rtol=1e-4, atol=1e-5)                # the others play no part
    assert not np.allclose(E_one, twin._embeddings(X[one], ['a', 'b'] * 3), atol=1e-3)   # grouped otherwise: others


def test_a_gated_model_round_trips(gated, tiny_corpus, open_gate):
    rec, folder = gated; back = CNNRecognizer.load(folder); paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    assert back.speaker_bn == 'gate' and back.bn_model_ is not None and back.bn_model_.speaker_bn == 'always'
    np.testing.assert_allclose(back.predict_proba_batch(paths, spk)[0], rec.predict_proba_batch(paths, spk)[0], atol=1e-5)
    assert back.gate_ == rec.gate_
    assert 'b0.head.1.weight' in __import__('safetensors.torch', fromlist=['load_file']).load_file(folder / 'model.safetensors')


def test_a_gated_model_without_its_twin_is_refused(gated, tmp_path):
    d = tmp_path / 'a'; shutil.copytree(gated[1], d); _rewrite(d, lambda t: {k: v for k, v in t.items() if k[0] != 'b'})
    with pytest.raises(CheckpointError, match='no speaker batch-norm networks') as e: CNNRecognizer.load(d)
    assert 'model.safetensors' in str(e.value)
    d = tmp_path / 'b'; shutil.copytree(gated[1], d); _rewrite(d, speaker_bn_head=None)
    with pytest.raises(CheckpointError, match='no usable classifier'): CNNRecognizer.load(d)


def test_older_models_load_without_a_twin(demo):
    rec = load_model(FIXTURES / 'cnn')                                                  # saved by ser_kit 0.1.0
    assert rec.speaker_bn is None and rec.bn_model_ is None and rec.adaptation() == 'none'


def test_head_without_refits_the_twin_too(gated, tiny_corpus, open_gate):
    rec, _ = gated; paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    twin_head = rec.bn_model_.head_['coef'].copy(); before = rec.predict_proba_batch(paths, spk)[0]
    with rec.head_without(['03']):
        assert not np.allclose(rec.bn_model_.head_['coef'], twin_head)
    np.testing.assert_allclose(rec.bn_model_.head_['coef'], twin_head)
    np.testing.assert_allclose(rec.predict_proba_batch(paths, spk)[0], before)


def test_listen_says_when_your_voice_went_to_speaker_batch_norm(gated, tiny_corpus, open_gate):
    from ser_kit.listen import YourVoice
    from ser_kit.data import load_audio
    voice = YourVoice(gated[0], after=2)
    hows = [voice.predict(load_audio(p, sr=16000))[1] for p in tiny_corpus.path[:4]]
    assert hows[0] == 'training statistics' and hows[-1] == 'your voice, 4 utterances, speaker batch norm'
    voice = YourVoice(gated[0].reading('both'), after=2)
    hows = [voice.predict(load_audio(p, sr=16000))[1] for p in tiny_corpus.path[:4]]
    assert hows[-1] == 'your voice, 4 utterances, both sets'


def test_the_fusion_member_reads_broad_speakers_by_both_sets():
    from ser_kit.fusion import FusionRecognizer
    assert FusionRecognizer().new_member('cnn').speaker_bn == 'both'
    assert FusionRecognizer(speaker_bn=None).new_member('cnn').speaker_bn is None      # one set, half the training


def test_a_fusion_says_which_networks_read_each_speaker(gated, tiny_corpus, open_gate):
    from ser_kit.fusion import FusionRecognizer
    rec, _ = gated; paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    fused = FusionRecognizer.from_models(EmotionRecognizer(n_jobs=1).fit(tiny_corpus), rec.reading('both'))
    assert set(fused.predict_table(paths, spk).networks) == {'both sets'}
    assert FusionRecognizer.from_models(fused.members[0], rec.reading(None)).networks_used(['02']) is None


def test_predictions_say_which_networks_read_each_speaker(gated, tiny_corpus, open_gate, tmp_path):
    import subprocess, sys, pandas as pd
    rec, folder = gated; paths, spk = list(tiny_corpus.path), list(tiny_corpus.speaker)
    t = rec.predict_table(paths, spk)
    assert set(t.networks) == {'speaker batch norm'} and list(t.columns[-3:]) == ['speaker', 'speaker_clips', 'networks']
    assert 'networks' not in rec.reading(None).predict_table(paths, spk)
    r = subprocess.run([sys.executable, '-m', 'ser_kit.cli', 'predict', str(folder), *paths, '--csv', str(tmp_path / 'p.csv')],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(tmp_path / 'p.csv')                              # a new process: the gate's own thresholds
    assert list(csv.columns[:6]) == ['path', 'prediction', 'speaker', 'speaker_clips', 'speaker_from', 'networks']
    assert set(csv.networks) == {'default'}                            # 6 clips a speaker: fewer than GATE_CLIPS


def test_a_gate_no_speaker_can_cross_trains_no_twin(tiny_corpus, tmp_path):
    "Two emotions (or the six RAVDESS and EMO-DB share) never span 6: the twin would be trained for nothing."
    rec = CNNRecognizer(epochs=1, batch_size=8, arch_params=SMALL, features=FEAT, n_jobs=1, val_speakers=['03'],
                        augment={}, n_models=1, speeds=())
    with pytest.warns(UserWarning, match="with 2 emotions none can, so only the usual networks are trained"):
        rec.fit(tiny_corpus)
    assert rec.speaker_bn == 'gate' and rec.bn_model_ is None          # the setting stays; this fit has no twin
    assert rec.adaptation() == 'speaker-adaptive (em, network vectors)'
    assert list(rec.network_histories()) == ['network 0']
    back = CNNRecognizer.load(rec.save(tmp_path / 'm'))                  # saved as what it holds: not gated
    assert back.speaker_bn is None and back.bn_model_ is None and back.adaptation() == rec.adaptation()
    with pytest.MonkeyPatch.context() as mp:                             # a refit where the gate can open: a twin
        mp.setattr(ser_kit.cnn, 'GATE_BREADTH', 1.0); rec.fit(tiny_corpus)
    assert rec.bn_model_ is not None and 'gated speaker batch norm' in rec.adaptation()
