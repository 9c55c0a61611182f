"""`--dask ADDRESS` on features, predict and evaluate: the work runs on a Dask cluster, the cache and the skipped-file
report behave as on one machine; without the `dask` extra, one error line."""
import contextlib, io, shutil, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest

from ser_kit.cli import main, features_command, predict_command, evaluate_command, dask_backend


@pytest.fixture(scope='module')
def corpus(demo_dir, tmp_path_factory):
    "One demo actor (60 files) and one file that is not audio."
    d = tmp_path_factory.mktemp('dask') / 'corpus'; shutil.copytree(Path(demo_dir) / 'Actor_01', d / 'Actor_01')
    (d / 'Actor_01' / '03-01-05-01-01-01-01.wav').write_text('not audio')
    return d


@pytest.fixture(scope='module')
def cluster():
    pytest.importorskip('distributed')
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c: yield c


def tasks_run(cluster, fn):
    "fn() and the number of tasks the cluster's scheduler ran meanwhile."
    from distributed import Client, get_task_stream
    with Client(cluster) as c, get_task_stream(client=c) as ts: out = fn()
    return out, len(ts.data)


def test_features_on_dask_as_on_one_machine(corpus, cluster, tmp_path, monkeypatch):
    import ser_kit.features as F
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))
    err = io.StringIO()
    D, n = tasks_run(cluster, lambda: features_command(str(corpus), out=tmp_path / 'd.csv', dask=cluster.scheduler_address,
                                                      stdout=io.StringIO(), stderr=err))
    assert n > 0, 'nothing ran on the cluster'
    assert '03-01-05-01-01-01-01.wav' in err.getvalue() and (tmp_path / 'd.csv.skipped.csv').is_file()
    sk = pd.read_csv(tmp_path / 'd.csv.skipped.csv'); assert len(sk) == 1 and str(corpus) not in sk.error[0]
    # the cache written through Dask serves the run on one machine: nothing is computed again
    monkeypatch.setattr(F, '_compute_features', lambda *a, **k: pytest.fail('recomputed: the cache was not used'))
    L = features_command(str(corpus), out=tmp_path / 'l.csv', n_jobs=1, stdout=io.StringIO(), stderr=io.StringIO())
    assert list(D.index) == list(L.index) and len(D) == 59
    np.testing.assert_allclose(D.select_dtypes('number').values, L.select_dtypes('number').values, rtol=1e-5)


def test_environment_variable_and_no_cache(corpus, cluster, tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_DASK', cluster.scheduler_address)
    D, n = tasks_run(cluster, lambda: features_command(str(corpus), 'prosody', cache=False, stderr=io.StringIO()))
    assert n > 0 and len(D) == 59


@pytest.fixture(scope='module')
def model_file(corpus, tmp_path_factory):
    from ser_kit.classical import EmotionRecognizer
    from ser_kit.data import load_corpus
    m = load_corpus(corpus)
    rec = EmotionRecognizer('logreg', n_jobs=1, speeds=(), adapt='none')
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); rec.fit(m[~m.path.str.endswith('03-01-05-01-01-01-01.wav')])
    return rec.save(tmp_path_factory.mktemp('m') / 'model.skops')


def test_predict_folder_on_dask(corpus, cluster, model_file, tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))   # nothing cached: the features are computed
    err = io.StringIO()
    T, n = tasks_run(cluster, lambda: predict_command(str(model_file), [str(corpus)], csv=str(tmp_path / 'p.csv'),
                                                     stdout=io.StringIO(), stderr=err, dask=cluster.scheduler_address))
    assert n > 0 and len(T) == 59 and '1 input(s) skipped' in err.getvalue()
    L = predict_command(str(model_file), [str(corpus)], stdout=io.StringIO(), stderr=io.StringIO())
    assert list(T.prediction) == list(L.prediction)


def test_evaluate_on_dask(corpus, cluster, demo, tmp_path, monkeypatch):
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))
    two = demo[demo.speaker.isin(sorted(demo.speaker.unique())[:2])]
    two.to_csv(tmp_path / 'two.csv', index=False)
    r, n = tasks_run(cluster, lambda: evaluate_command(str(tmp_path / 'two.csv'), estimator='logreg', folds=2,
                                                      adapt='none', speeds=(), stdout=io.StringIO(),
                                                      dask=cluster.scheduler_address))
    assert n > 0 and r['folds'] == 2 and r['n_files'] == len(two)


def run_main(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): rc = main(list(argv))
    return rc, err.getvalue()


def test_without_the_dask_extra_one_line(corpus, tmp_path, monkeypatch):
    for k in ('distributed', 'dask.distributed'): monkeypatch.setitem(sys.modules, k, None)
    rc, err = run_main('features', str(corpus), '--out', str(tmp_path / 'f.csv'), '--dask', 'tcp://127.0.0.1:8786')
    assert rc == 2 and err.count('\n') == 1 and "pip install 'ser_kit[dask]'" in err, err
    assert not (tmp_path / 'f.csv').exists()


def test_unreachable_scheduler_one_line(corpus, tmp_path):
    pytest.importorskip('distributed')
    rc, err = run_main('features', str(corpus), '--out', str(tmp_path / 'f.csv'), '--dask', 'nonsense://nowhere')
    assert rc == 2 and err.count('\n') == 1 and err.startswith('ser-kit: error: --dask nonsense://nowhere'), err


def test_no_address_no_dask(monkeypatch):
    monkeypatch.delenv('SER_KIT_DASK', raising=False)
    with dask_backend(None) as c: assert c is None
