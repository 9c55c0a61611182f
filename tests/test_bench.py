"The benchmarks report what a user times: the cold command (new process, empty cache) beside the warm figures."
import io, json, shutil, warnings
from pathlib import Path
import pytest

from ser_kit.features import bench_features, cold_command, COLD_METHOD
from ser_kit.models import bench_predict
from ser_kit.cli import main


@pytest.fixture(scope='module')
def one_actor(demo_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp('bench') / 'corpus'; shutil.copytree(Path(demo_dir) / 'Actor_01', d / 'Actor_01')
    return d


def test_bench_features_has_the_cold_command(one_actor):
    df = bench_features(str(one_actor), n_files=8, n_jobs=1, featuresets=['default'], naive_files=2)
    assert list(df.method) == ['naive librosa loop', 'ser_kit', 'ser_kit cache hit', COLD_METHOD]
    cold = df.iloc[-1]
    assert cold.files == 60 and cold.seconds > 0 and cold.x_naive > 0 and cold.peak_mb > 0
    assert (one_actor / 'Actor_01').is_dir() and len(list(one_actor.rglob('*'))) == 61   # nothing written into the corpus
    warm = bench_features(str(one_actor), n_files=4, n_jobs=1, featuresets=['default'], naive_files=1, cold=False)
    assert COLD_METHOD not in set(warm.method)


def test_cold_command_fails_with_the_commands_line(tmp_path):
    with pytest.raises(Exception, match='ser-kit: error: /no/such'):
        cold_command(['features', '/no/such', '--out', str(tmp_path / 'f.csv')])


def test_bench_predict_reports_cold_seconds(one_actor, demo, tmp_path):
    from ser_kit.classical import EmotionRecognizer
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rec = EmotionRecognizer('logreg', n_jobs=1, speeds=(), adapt='none').fit(demo[demo.speaker == demo.speaker.min()])
    model = rec.save(tmp_path / 'm.skops')
    clip = sorted((one_actor / 'Actor_01').glob('*.wav'))[0]
    r = bench_predict(model, clip, n=2, warmup=1)
    assert r['cold_s'] > 0 and r['cold_folder_s'] > 0 and r['cold_folder_files'] == 60 and r['ms_median'] > 0
    out = io.StringIO()
    import contextlib
    with contextlib.redirect_stdout(out): assert main(['bench', 'predict', str(model), '--clip', str(clip), '-n', '1',
                                                      '--warm-only']) == 0
    assert 'cold_s' not in json.loads(out.getvalue())
