"""Cold commands, as a user times them: `ser-kit features DIR --out f.csv` in a new process with an empty cache,
with -j 1 and -j 2, beside the warm in-process engine and the seed-004 tutorial recipe on the same files and cores;
plus `ser-kit demo` cold. Writes benchmarks/results/cold_commands.json and prints a Markdown table.

    python benchmarks/cold_commands.py                      # demo corpora; $SER_KIT_DATA's RAVDESS copies when there
    SER_KIT_DATA=../shared/data python benchmarks/cold_commands.py --repeat 3
    python benchmarks/cold_commands.py --no-demo            # leave out `ser-kit demo` (minutes)
    python benchmarks/cold_commands.py --large --no-demo    # only a 1440-file corpus (24 demo actors at 48 kHz)

Corpora: the demo corpus, 1 actor (60 files, 16 kHz) and 8 actors at 48 kHz (480 files); with $SER_KIT_DATA,
ravdess-dev-48k (the published 48 kHz files) and, when that holds fewer than 480 files, the first 8 actors of
ravdess-dev written at 48 kHz (soxr) into a temporary folder, so that decoding costs what 48 kHz RAVDESS costs.
Timings depend on what else the machine runs: the JSON records the load average before and after.
"""
import argparse, json, os, platform, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np, soundfile as sf, soxr
from ser_kit.data import make_demo_corpus, audio_files
from ser_kit.features import bench_features, cold_command, COLD_METHOD

OUT = Path(__file__).resolve().parent / 'results' / 'cold_commands.json'


def ravdess_48k(root: Path, tmp: Path) -> list[tuple[str, Path]]:
    "(name, folder) of real 48 kHz RAVDESS corpora found under `root`."
    out = []
    pub = root / 'ravdess-dev-48k'
    if pub.is_dir(): out.append((f'ravdess-dev-48k ({len(audio_files(pub))} files, published 48 kHz)', pub))
    dev = root / 'ravdess-dev'
    if (not pub.is_dir() or len(audio_files(pub)) < 480) and dev.is_dir():
        dest = tmp / 'ravdess-48k'
        for f in [f for f in audio_files(dev) if f.parent.name <= 'Actor_08']:
            y, sr = sf.read(f, dtype='float32')
            (dest / f.parent.name).mkdir(parents=True, exist_ok=True)
            sf.write(dest / f.parent.name / f.name, soxr.resample(y, sr, 48000), 48000, subtype='PCM_16')
        out.append((f'ravdess-dev actors 1-8 at 48 kHz ({len(audio_files(dest))} files, upsampled)', dest))
    return out


def measure(name: str, folder: Path, jobs: int, repeat: int) -> dict:
    "One corpus, one -j: warm engine, seed-004 recipe, cold command (median of `repeat` runs)."
    n = len(audio_files(folder))
    df = bench_features(str(folder), n_files=n, n_jobs=jobs, featuresets=['default'], cold=True)
    naive = df.iloc[0]; warm = df[df.method == 'ser_kit'].iloc[0]; cold = df[df.method == COLD_METHOD].iloc[0]
    secs = [float(cold.seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat - 1):
            secs.append(cold_command(['features', str(folder), '--out', f'{tmp}/f.csv', '-j', str(jobs)]))
    cold_s = statistics.median(secs)
    row = dict(corpus=name, files=n, jobs=jobs, seed004_files_per_s=float(naive.files_per_s),
               seed004_files=int(naive.files), warm_files_per_s=float(warm.files_per_s),
               warm_x_seed004=round(float(warm.files_per_s) / float(naive.files_per_s), 1),
               cold_seconds=round(cold_s, 2), cold_seconds_all=[round(s, 2) for s in secs],
               cold_files_per_s=round(n / cold_s, 1),
               cold_x_seed004=round(n / cold_s / float(naive.files_per_s), 1), cold_peak_mb=int(cold.peak_mb))
    print(f"{name} -j {jobs}: cold {row['cold_seconds']} s ({row['cold_files_per_s']} files/s, "
          f"{row['cold_x_seed004']}x seed-004), warm {row['warm_files_per_s']} files/s", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeat', type=int, default=3, help='cold runs per corpus and -j (median reported)')
    ap.add_argument('--jobs', default='1,2', help='the -j values (default 1,2)')
    ap.add_argument('--no-demo', action='store_true', help='leave out `ser-kit demo` cold')
    ap.add_argument('--out', default=None, help='where to write the JSON (default results/cold_commands[_1440].json)')
    ap.add_argument('--large', action='store_true', help='only the 1440-file demo corpus (24 actors at 48 kHz)')
    a = ap.parse_args()
    a.out = a.out or str(OUT.with_name('cold_commands_1440.json') if a.large else OUT)
    load0, t0 = os.getloadavg(), time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.large:
            corpora = [('demo, 24 actors (1440 files, 48 kHz)', make_demo_corpus(tmp / 'demo1440', n_actors=24, sr=48000))]
        else:
            corpora = [('demo, 1 actor (60 files, 16 kHz)', make_demo_corpus(tmp / 'demo60', n_actors=1)),
                       ('demo, 8 actors (480 files, 48 kHz)', make_demo_corpus(tmp / 'demo480', n_actors=8, sr=48000))]
            if os.environ.get('SER_KIT_DATA'): corpora += ravdess_48k(Path(os.environ['SER_KIT_DATA']), tmp)
        rows = [measure(name, folder, int(j), a.repeat) for name, folder in corpora for j in a.jobs.split(',')]
        for r in rows:   # the tutorial recipe as written is one loop in one process: the default command beside it
            one = next((o for o in rows if o['corpus'] == r['corpus'] and o['jobs'] == 1), None)
            r['cold_x_seed004_one_process'] = round(r['cold_files_per_s'] / one['seed004_files_per_s'], 1) if one else None
        demo = None
        if not a.no_demo:   # the demo corpus, not $SER_KIT_DATA: a new user's first command
            env = {'SER_KIT_DATA': None}
            demo = round(cold_command(['demo', '--out', str(tmp / 'report')], cwd=tmp, env=env), 1)
            print(f"ser-kit demo cold: {demo} s", flush=True)
    res = dict(date=time.strftime('%Y-%m-%d %H:%M'), machine=f"{platform.node()}: {os.cpu_count()} cores, "
               f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
               load_average_before=[round(x, 1) for x in load0], load_average_after=[round(x, 1) for x in os.getloadavg()],
               minutes=round((time.time() - t0) / 60, 1), repeat=a.repeat, rows=rows, demo_cold_seconds=demo,
               note="cold = `ser-kit features DIR --out f.csv -j N` in a new process with an empty cache (median); "
                    "warm = extract_features in a warm process, no cache; seed004 = librosa tutorial loop, same cores "
                    "(-j 2: two processes); cold_x_seed004_one_process = against the tutorial loop as written, one process")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print('\n| corpus | -j | cold s | cold files/s | cold x seed-004 (same -j) | cold x seed-004 (one process) '
          '| warm files/s | warm x seed-004 | seed-004 files/s |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['corpus']} | {r['jobs']} | {r['cold_seconds']} | {r['cold_files_per_s']} | {r['cold_x_seed004']} | "
              f"{r['cold_x_seed004_one_process']} | {r['warm_files_per_s']} | {r['warm_x_seed004']} | "
              f"{r['seed004_files_per_s']} |")
    print(f"\n`ser-kit demo` cold: {demo} s; load average before {res['load_average_before']}, after "
          f"{res['load_average_after']}; written to {a.out}")


if __name__ == '__main__':
    sys.exit(main())
