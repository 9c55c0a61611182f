"Hostile input for the deep and fused models (issue 14, item 8): a class whose every clip is unreadable."
import warnings
import pandas as pd, pytest

from test_hostile_cache import corpus, cache, _spoil  # noqa: F401  (fixtures: a fresh 4-speaker corpus, own cache)

torch = pytest.importorskip('torch')


def _cnn(**kw):
    from ser_kit.cnn import CNNRecognizer
    return CNNRecognizer(epochs=1, n_jobs=1, val_speakers=['04'], features=dict(seconds=1.0, crop=None), **kw)


def test_cnn_trains_without_a_class_that_lost_every_clip(corpus, cache, tmp_path):
    from ser_kit.models import load_model
    _spoil(corpus[corpus.emotion == 'sad'].path)
    with pytest.warns(UserWarning, match="no readable training clip of 'sad'"):
        rec = _cnn().fit(corpus)
    assert rec.labels == ['neutral', 'angry'] and rec.networks[0].head[-1].out_features == 2
    back = load_model(rec.save(tmp_path / 'cnn'))
    assert set(back.predict(list(corpus[corpus.emotion != 'sad'].path[:4]))) <= {'neutral', 'angry'}


def test_fusion_follows_the_cnn_when_a_class_is_lost(corpus, cache):
    from ser_kit.fusion import FusionRecognizer
    _spoil(corpus[corpus.emotion == 'sad'].path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        cnn = _cnn().fit(corpus)
        fused = FusionRecognizer(n_jobs=1, classical=dict(featureset='prosody')).fit_with_cnn(cnn, corpus)
    assert fused.labels == ['neutral', 'angry'] == fused.members[0].labels
    assert set(fused.predict(list(corpus[corpus.emotion != 'sad'].path[:4]))) <= {'neutral', 'angry'}
