"""More training speakers from another corpus: does EMO-DB help the classical default on unseen RAVDESS actors?

"More real speakers" is one of the two known levers beyond 16 training actors. The only other speakers in the data are
EMO-DB's ten (German, every file cut or padded to 2.00 s and peak-normalised). RAVDESS actors 01-16 in folds of four
(01-04, 05-08, ...); each fold trains the classical default (`EmotionRecognizer()`: `rich` features, speaker-adaptive
'em', speed-perturbed copies, class-weighted logreg) on the 12 other actors, with and without the EMO-DB clips of the
six emotions both corpora share (boredom left out; EMO-DB speakers renamed so that no id collides with an actor), and
scores the 4 held-out actors on all 8 RAVDESS emotions (their clips grouped by speaker, unlabelled). Writes
results/extra_corpus.json (per fold, per emotion recall, settings, versions).

    SER_KIT_DATA=../shared/data python benchmarks/extra_corpus.py     # about 3 minutes warm on one core
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
from adaptation import four_actor_folds
from ser_kit.data import load_corpus
from ser_kit.models import metrics, versions
from ser_kit.classical import EmotionRecognizer


def other_speakers(emo: pd.DataFrame, labels) -> pd.DataFrame:
    "EMO-DB clips of the shared emotions, each speaker renamed `emodb<id>` (ids 03, 08, ... are also RAVDESS actors)."
    e = emo[emo.emotion.isin(set(labels))].copy(); e['speaker'] = 'emodb' + e.speaker.astype(str)
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'extra_corpus.json'))
    a = ap.parse_args()
    root = Path(os.environ.get('SER_KIT_DATA', '../shared/data'))
    rav = load_corpus(root / 'ravdess-dev').reset_index(drop=True)
    extra = other_speakers(load_corpus(root / 'emodb'), rav.emotion.unique())
    rows, t0 = {}, time.time()
    for k, (tr, te) in enumerate(four_actor_folds(rav)):
        train, test = rav.iloc[tr], rav.iloc[te]
        for name, data in (('ravdess', train), ('ravdess+emodb', pd.concat([train, extra], ignore_index=True))):
            t = time.time(); rec = EmotionRecognizer(n_jobs=1).fit(data)
            s = metrics(list(test.emotion), rec.predict(list(test.path), speakers=list(test.speaker)))
            r = dict(fold=k, test_actors=sorted(test.speaker.unique()), train_clips=len(data), uar=round(s['uar'], 4),
                     recall={c: round(v, 4) for c, v in sorted(s['per_class_recall'].items())},
                     seconds=round(time.time() - t, 1))
            rows.setdefault(name, []).append(r); print(name, json.dumps(r), flush=True)
    mean = {n: round(float(np.mean([r['uar'] for r in v])), 4) for n, v in rows.items()}
    rec_mean = {n: {c: round(float(np.mean([r['recall'][c] for r in v])), 3) for c in v[0]['recall']}
                for n, v in rows.items()}
    print('mean UAR', mean); print(pd.DataFrame(rec_mean).to_string())
    res = dict(data=f"RAVDESS actors {', '.join(sorted(rav.speaker.unique()))} ({len(rav)} clips); EMO-DB "
                    f"{extra.speaker.nunique()} speakers, {len(extra)} clips of {sorted(extra.emotion.unique())}",
               protocol='folds of 4 actors (01-04, 05-08, ...); test actors scored on all 8 emotions, by speaker',
               model='EmotionRecognizer() (the classical default)', date=time.strftime('%Y-%m-%d'),
               settings=recorded_settings(a),
               mean_uar=mean, mean_recall=rec_mean, folds=rows, seconds=round(time.time() - t0, 1), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    Path(a.out).write_text(json.dumps(res, indent=1)); print('written', a.out)


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
