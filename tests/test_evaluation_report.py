"The per-class classification report (values, report pages) and the provenance of `cross_corpus` results."
import json, os
import numpy as np, pandas as pd
import pytest
from sklearn.metrics import classification_report

from ser_kit.models import Recognizer, metrics
from ser_kit.evaluation import classification_report_frame, cross_corpus, write_report

TRUE = ['neutral'] * 4 + ['angry'] * 3 + ['sad'] * 3 + ['happy']
PRED = ['neutral', 'neutral', 'sad', 'angry', 'angry', 'angry', 'happy', 'sad', 'neutral', 'sad', 'fearful']


def _result(y=TRUE, p=PRED):
    "A cross-validation-like result of 11 clips from two speakers (fearful predicted, never true)."
    rows = [dict(path=f'c{i}.wav', speaker='01' if i % 2 else '02', emotion=t, prediction=q, fold=i % 2)
            for i, (t, q) in enumerate(zip(y, p))]
    m = metrics(y, p)
    return dict(protocol='speaker', folds=2, n_files=len(rows), seconds=0.1, predictions=rows, **m)


def test_values_equal_sklearn_classification_report():
    t = classification_report_frame(_result())
    sk = classification_report(TRUE, PRED, output_dict=True, zero_division=0)
    assert list(t.index) == ['neutral', 'happy', 'sad', 'angry', 'fearful', 'macro avg', 'weighted avg']
    assert list(t.columns) == ['precision', 'recall', 'f1', 'support']
    for row in t.index:
        for col, skcol in (('precision', 'precision'), ('recall', 'recall'), ('f1', 'f1-score'), ('support', 'support')):
            assert t.loc[row, col] == pytest.approx(sk[row][skcol]), (row, col)
    assert t.support.dtype.kind == 'i'


def test_macro_recall_is_the_uar_and_weighted_recall_the_wa():
    r, t = _result(), classification_report_frame(_result())
    assert t.loc['macro avg', 'recall'] == pytest.approx(metrics(TRUE, PRED)['uar'] * 4 / 5)   # fearful: recall 0 of 0
    assert t.loc['weighted avg', 'recall'] == pytest.approx(r['wa'])


def test_needs_predictions():
    from ser_kit.data import SettingError
    with pytest.raises(SettingError, match='no per-clip predictions'): classification_report_frame({})


def test_report_contains_the_per_class_table(tmp_path):
    rep = write_report(tmp_path / 'report', {'toy': _result()}, 'toy corpus', n_boot=20)
    md, html = (rep / 'report.md').read_text(), (rep / 'report.html').read_text()
    assert '## per-class report: toy' in md
    assert '| emotion | precision | recall | f1 | support |' in md
    assert '| macro avg |' in md and '| weighted avg |' in md
    assert '| neutral | 0.667 | 0.500 | 0.571 | 4 |' in md                        # 2 of 3 'neutral' right; 2 of 4 found
    assert 'per-class report: toy' in html and 'weighted avg' in html
    js = json.loads((rep / 'metrics.json').read_text())['classification_report']['toy']
    assert js['angry']['support'] == 3 and js['angry']['recall'] == pytest.approx(2 / 3)


class _Loudness(Recognizer):
    "Says 'angry' for loud clips, 'neutral' for quiet ones: a model with no training worth the wait."
    model_type, needs = 'loudness', ('soundfile',)

    def __init__(self, threshold:float=0.2, seed:int=7, **kw):
        super().__init__(seed=seed, **kw); self.threshold = threshold

    def fit(self, manifest):
        self.labels = ['neutral', 'angry']; return self

    def predict_proba_audio(self, clips, speakers=None):
        loud = np.array([float(np.abs(c).max() > self.threshold) for c in clips])
        return np.stack([1 - loud, loud], axis=1)


def test_cross_corpus_carries_seed_versions_settings(tiny_corpus):
    train, test = tiny_corpus[tiny_corpus.speaker != '03'], tiny_corpus[tiny_corpus.speaker == '03']
    r = cross_corpus(train, test, lambda: _Loudness(threshold=0.25))
    assert r['seed'] == 7 and r['adaptation'] == 'none'
    assert r['model']['model_type'] == 'loudness' and r['model']['settings']['threshold'] == 0.25
    assert {'ser_kit', 'sklearn', 'numpy', 'soundfile'} <= set(r['versions'])
    assert r['uar'] == 1.0 and r['n_test'] == len(test) == len(r['predictions'])
    assert {'path', 'speaker', 'emotion', 'prediction', 'p_neutral', 'p_angry'} <= set(r['predictions'][0])
    assert classification_report_frame(r).loc['macro avg', 'f1'] == 1.0


def test_cross_corpus_keys_match_cross_validate(tiny_corpus):
    from ser_kit.models import cross_validate
    cv = cross_validate(lambda: _Loudness(), tiny_corpus, folds=3)
    xc = cross_corpus(tiny_corpus[tiny_corpus.speaker != '03'], tiny_corpus[tiny_corpus.speaker == '03'], _Loudness)
    for k in ('seed', 'adaptation', 'model', 'versions', 'predictions', 'protocol', 'n_skipped'): assert k in xc, k
    assert set(xc['model']) == set(cv['model']) and set(xc['versions']) == set(cv['versions'])


def test_confusion_matrix_counts_are_integers(tiny_corpus):
    rec = _Loudness().fit(tiny_corpus)
    cm = rec.confusion_matrix(tiny_corpus, percentage=False)
    assert all(k == 'i' for k in cm.dtypes.map(lambda d: d.kind)), cm.dtypes
    assert int(cm.to_numpy().sum()) == len(tiny_corpus)
    pc = rec.confusion_matrix(tiny_corpus)          # the default: percent of each true class
    assert np.allclose(pc.sum(axis=1), 100, atol=0.2)


def _blobs(n=60, seed=0):
    "Two well separated clouds of 8-D points, labelled angry and sad."
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(0, 1, (n // 2, 8)), rng.normal(6, 1, (n // 2, 8))]
    return X, ['angry'] * (n // 2) + ['sad'] * (n // 2)


def test_feature_map_umap_is_called_as_documented(monkeypatch):
    "project_2d asks umap-learn for 2 components, the seed and a neighbourhood that fits, and returns its projection."
    import sys, types
    from ser_kit.evaluation import project_2d
    calls = []
    class FakeUMAP:
        def __init__(self, **kw): calls.append(kw)
        def fit_transform(self, Z): return Z[:, :2] * 2
    monkeypatch.setitem(sys.modules, 'umap', types.SimpleNamespace(UMAP=FakeUMAP))
    X = _blobs(10)[0]
    np.testing.assert_array_equal(project_2d(X, 'umap', seed=3), X[:, :2] * 2)
    assert calls == [dict(n_components=2, n_neighbors=9, random_state=3)]


@pytest.mark.skipif(not os.environ.get('SER_KIT_SLOW_TESTS'), reason='slow (umap compiles with numba on first use, '
                    'about 20 s): set SER_KIT_SLOW_TESTS=1')
def test_feature_map_umap():
    pytest.importorskip('umap')
    import matplotlib; matplotlib.use('Agg')
    from ser_kit.evaluation import plot_feature_map, project_2d
    X, y = _blobs()
    fig = plot_feature_map(X, y, method='umap')    # one UMAP fit (its first call compiles: the slow part)
    assert fig.axes[0].get_title() == 'UMAP of the features'
    Z = np.asarray(fig.axes[0].collections[0].get_offsets())    # the points as drawn, in the order of X
    assert Z.shape == (60, 2) and np.isfinite(Z).all()
    a, s = Z[:30].mean(0), Z[30:].mean(0)          # the two clouds stay apart
    assert np.linalg.norm(a - s) > 3 * max(Z[:30].std(0).max(), Z[30:].std(0).max())


def test_feature_map_umap_missing_says_how_to_install(monkeypatch):
    import sys
    from ser_kit.data import SettingError
    from ser_kit.evaluation import project_2d
    monkeypatch.setitem(sys.modules, 'umap', None)     # as if umap-learn were not installed: import fails
    with pytest.raises(SettingError) as e: project_2d(_blobs()[0], 'umap')
    assert 'pip install umap-learn' in str(e.value) and '\n' not in str(e.value)
    with pytest.raises(SettingError, match="'pca', 'tsne' or 'umap'"): project_2d(_blobs()[0], 'lda')
