"""Hostile input, third round: a user's files beside an old model or named like ours are never replaced, a closed pipe
or Ctrl-C ends a command cleanly, a zip bomb is refused unopened, bad manifests and `-j` values get one line, the same
file reached by two names is one clip, and timing a folder with a bad file names it."""
import json, os, signal, subprocess, sys, time, zipfile
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf
import ser_kit.cli as cli
from ser_kit.cli import main, build_parser
from ser_kit.data import check_output, output_kind, read_manifest, OutputPathError, MANIFEST_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def _clips(folder, n=4, speakers=('01', '02')):
    "RAVDESS-named one-second voiced clips (a gliding tone with harmonics) in `folder`/Actor_XX."
    t = np.arange(16000) / 16000
    for s in speakers:
        d = folder / f'Actor_{s}'; d.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            f0 = 120 + 20 * k + 40 * np.sin(2 * np.pi * 1.5 * t)
            ph = 2 * np.pi * np.cumsum(f0) / 16000
            y = sum(0.2 / h * np.sin(h * ph) for h in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
            emo = '01' if k % 2 == 0 else '05'
            sf.write(d / f'03-01-{emo}-01-{k // 4 + 1:02d}-{k // 2 % 2 + 1:02d}-{s}.wav', y.astype(np.float32), 16000)
    return folder


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    "A quick classical model (logreg, no adaptation, no speed copies) and the folder it was trained on."
    root = tmp_path_factory.mktemp('h3')
    data = _clips(root / 'data', n=6, speakers=('01', '02', '03'))
    out = root / 'm.skops'
    assert main(['train', str(data), '-o', str(out), '--estimator', 'logreg', '--adapt', 'none', '--speeds', 'none',
                 '-j', '1']) == 0
    return out, data


# ---- a user's files are never replaced -------------------------------------------------------------------------------
def test_an_old_style_model_folder_holding_a_users_files_is_not_replaced(tmp_path):
    f = tmp_path / 'legacy'; f.mkdir()
    (f / 'ser_kit.json').write_text(json.dumps(dict(model_type='cnn', format_version=1)))   # as ser_kit 0.1.0 wrote
    (f / 'model.safetensors').write_bytes(b'weights')
    assert output_kind(f) == 'model folder'                       # ours alone: a new model may replace it
    (f / 'my_results.json').write_text('{"my": "notes"}')
    assert output_kind(f) is None
    with pytest.raises(OutputPathError, match='not a ser_kit model folder'): check_output(f, 'model folder')
    assert (f / 'my_results.json').read_text() == '{"my": "notes"}'


def test_a_foreign_skops_or_parquet_file_is_not_taken_for_ours(tmp_path, model):
    import skops.io as sio
    sio.dump({'my': 'data'}, tmp_path / 'foreign.skops')
    pd.DataFrame({'sales': [1, 2]}).to_parquet(tmp_path / 'sales.parquet')
    for name, kind in (('foreign.skops', 'model'), ('sales.parquet', 'features')):
        with pytest.raises(OutputPathError, match=f'not a ser_kit {kind} file'): check_output(tmp_path / name, kind)
    ours = pd.DataFrame({c: ['x'] for c in MANIFEST_COLUMNS} | {'f0_mean': [1.0]})
    ours.to_parquet(tmp_path / 'ours.parquet')
    assert output_kind(tmp_path / 'ours.parquet') == 'features' and output_kind(model[0]) == 'model'


def test_a_zip_bomb_model_file_is_refused_before_it_is_unpacked(tmp_path, capsys):
    bomb = tmp_path / 'bomb.skops'
    with zipfile.ZipFile(bomb, 'w', zipfile.ZIP_DEFLATED) as z:
        with z.open('schema.json', 'w') as f:
            for _ in range(80): f.write(b' ' * (1 << 20))        # 80 MiB of spaces: a few kB on disk
    assert bomb.stat().st_size < 1 << 20
    assert main(['predict', str(bomb), str(tmp_path)]) == 2
    assert 'unpacks to 80 MiB' in capsys.readouterr().err


# ---- a closed pipe, Ctrl-C, -j ---------------------------------------------------------------------------------------
def test_a_closed_pipe_still_writes_the_file_and_ends_quietly(tmp_path, model):
    out = tmp_path / 'p.csv'
    cmd = f"{sys.executable} -m ser_kit.cli predict {model[0]} {model[1]} --csv {out} | head -c 1 >/dev/null"
    r = subprocess.run(['bash', '-o', 'pipefail', '-c', cmd], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert 'Broken pipe' not in r.stderr and 'Traceback' not in r.stderr
    assert len(pd.read_csv(out)) == 18


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys, tmp_path):
    def interrupted(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(cli, 'corpus_command', interrupted)
    assert main(['corpus', str(tmp_path)]) == 130
    assert capsys.readouterr().err == 'ser-kit: interrupted\n'


def test_jobs_must_be_a_worker_count_and_are_capped_at_the_cores(capsys):
    assert build_parser().parse_args(['corpus', 'x', '-j', '100000']).jobs == os.cpu_count()
    assert build_parser().parse_args(['corpus', 'x', '-j', '-1']).jobs == -1
    for bad in ('0', '-3', 'two'):
        with pytest.raises(SystemExit) as e: build_parser().parse_args(['corpus', 'x', '-j', bad])
        assert e.value.code == 2
    assert 'give at least 1 worker' in capsys.readouterr().err


# ---- manifests and inputs ------------------------------------------------------------------------------------------
def test_empty_or_numeric_corpus_cells_read_as_custom(tmp_path, capsys):
    data = _clips(tmp_path / 'd', n=2, speakers=('01',))
    paths = sorted(str(p) for p in data.rglob('*.wav'))
    csv = tmp_path / 'm.csv'
    csv.write_text(f'path,speaker,emotion,corpus\n{paths[0]},01,neutral,\n{paths[1]},01,happy,7\n')
    assert list(read_manifest(csv).corpus) == ['custom', '7']
    assert main(['corpus', str(csv)]) == 0 and 'corpus: 7, custom' in capsys.readouterr().out


def test_predict_reads_a_list_whose_labels_it_does_not_know(tmp_path, model, capsys):
    paths = sorted(str(p) for p in model[1].rglob('*.wav'))[:3]
    csv = tmp_path / 'l.csv'
    pd.DataFrame(dict(path=paths, speaker='07', emotion=['frustrated', 3, None])).to_csv(csv, index=False)
    assert main(['predict', str(model[0]), str(csv), '--csv', str(tmp_path / 'p.csv')]) == 0
    assert len(pd.read_csv(tmp_path / 'p.csv')) == 3


def test_one_file_by_two_names_is_one_clip_and_a_link_loop_is_reported(tmp_path, model, capsys):
    d = tmp_path / 'in'; d.mkdir()
    clip = sorted(model[1].rglob('*.wav'))[0]
    (d / 'a.wav').write_bytes(clip.read_bytes())
    (d / 'self.wav').symlink_to('self.wav')                            # a link to itself
    (tmp_path / 'also').symlink_to(d)
    args = [str(d), str(d / '..' / 'in' / 'a.wav'), str(tmp_path / 'also' / 'a.wav')]
    assert main(['predict', str(model[0]), *args, '--csv', str(tmp_path / 'p.csv')]) == 0
    err = capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / 'p.csv')) == 1
    assert err.count('predicted once') == 2 and 'self.wav: cannot be opened' in err


def test_timing_a_folder_with_a_bad_file_names_it(tmp_path):
    from ser_kit.features import bench_features
    data = _clips(tmp_path / 'd', n=2, speakers=('01',))
    (data / 'Actor_01' / '03-01-03-01-01-01-01.wav').write_bytes(b'')
    with pytest.warns(UserWarning, match='1 file.*left out of the timing.*empty file'):
        df = bench_features(str(data), n_files=2, n_jobs=1, featuresets=['default'], naive_files=1, cold=False)
    assert set(df.featureset) == {'seed004', 'default'}


def test_demo_refuses_a_users_folder_before_any_training(tmp_path, model, capsys):
    site = tmp_path / 'site'; site.mkdir(); (site / 'report.html').write_text('mine')
    t = time.time()
    assert main(['demo', '--data', str(model[1]), '--out', str(site)]) == 2
    assert 'not a ser_kit report' in capsys.readouterr().err and time.time() - t < 60
    assert (site / 'report.html').read_text() == 'mine'


def test_a_row_without_an_emotion_is_skipped_and_labels_are_read_loosely(tmp_path):
    data = _clips(tmp_path / 'd', n=3, speakers=('01',))
    p = sorted(str(x) for x in data.rglob('*.wav'))
    csv = tmp_path / 'm.csv'
    csv.write_text(f'path,speaker,emotion\n{p[0]},01, Happy \n{p[1]},01,\n{p[2]},01,SAD\n')
    m = read_manifest(csv)
    assert list(m.emotion) == ['happy', 'sad'] and m.attrs['skipped'] == [f'{csv}: row 3: no emotion']


def test_a_cache_pointed_at_a_folder_of_audio_is_not_written_into(tmp_path, monkeypatch):
    from ser_kit.data import writable_cache_dir
    from ser_kit.features import CacheWarning
    rec = _clips(tmp_path / 'rec', n=1, speakers=('01',)) / 'Actor_01'
    monkeypatch.setenv('SER_KIT_CACHE', str(rec))
    with pytest.warns(CacheWarning, match='holds audio files'): d = writable_cache_dir('features')
    assert not d.is_relative_to(rec) and sorted(p.name for p in rec.iterdir()) == ['03-01-01-01-01-01-01.wav']


def test_a_skew_that_keeps_every_emotion_is_refused(model, capsys):
    assert main(['evaluate', str(model[1]), '--skew', '2', '--folds', '3', '-j', '1']) == 2
    assert 'keeps every one of its 2 emotions' in capsys.readouterr().err


def test_a_custom_name_without_a_speaker_is_skipped_and_named(tmp_path):
    from ser_kit.data import load_custom
    d = tmp_path / 'mine'; d.mkdir()
    y = (0.1 * np.sin(2 * np.pi * 150 * np.arange(16000) / 16000)).astype(np.float32)
    for name in ('ann_1_happy.wav', 'bob_2_sad.wav', '_x_happy.wav'): sf.write(d / name, y, 16000)
    with pytest.warns(UserWarning, match='no speaker before the first _'): m = load_custom(d)
    assert sorted(m.speaker) == ['ann', 'bob']
