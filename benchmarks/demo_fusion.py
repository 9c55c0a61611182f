"""`ser-kit demo` on a real corpus, and its fusion row four ways on the same two members' predictions.

Runs `run_demo` (what `ser-kit demo` runs: nested grid search for the classical model, a one-network 8-epoch CNN, the
same speaker folds) unless `--report` names a report folder it already wrote, then fuses the members' saved per-clip
probabilities as `fuse_results` can: each fold's CNN weight cross-fitted on the other folds (the default) or fixed at
0.5, in the log-linear pool (the default) or the weighted mean (what the demo did before). Nothing is chosen on a
fold's own labels.

    SER_KIT_DATA=../shared/data python benchmarks/demo_fusion.py [--report DIR]   # ~3.5 min on 2 cores without --report
"""
import argparse, json, os, platform, time
from pathlib import Path
import pandas as pd
from ser_kit.evaluation import fuse_results, run_demo
from ser_kit.models import versions


def member(report: Path, name: str, labels: list) -> dict:
    "A member's saved per-clip predictions as a result `fuse_results` takes."
    p = pd.read_csv(report / f'predictions_{name}.csv', dtype={'speaker': str})
    return dict(protocol='speaker', folds=int(p.fold.nunique()), labels=labels, seconds=0.0, predictions=p.to_dict('records'))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--report', default=None, help='a report folder `ser-kit demo` wrote (default: run it now)')
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'demo_fusion_ravdess.json'))
    a = ap.parse_args(); t0 = time.time()
    data = Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev'
    report = Path(a.report) if a.report else Path('/tmp/ser_kit_demo_fusion')
    if not a.report: run_demo(data, report)
    metrics = json.loads((report / 'metrics.json').read_text())
    labels = metrics['results']['classical']['labels']
    ca, cn = member(report, 'classical', labels), member(report, 'cnn', labels)
    rows = [dict(model=m, uar=round(metrics['results'][m]['uar'], 4)) for m in ('classical', 'cnn')]
    for weight, pool in ((None, 'log'), (None, 'linear'), (0.5, 'log'), (0.5, 'linear')):
        f = fuse_results(ca, cn, weight=weight, pool=pool)
        rows.append(dict(model=f"fusion, {pool} pool, weight {'cross-fitted' if weight is None else weight}",
                         uar=round(f['uar'], 4), weights=f['model']['weights']))
    table = pd.DataFrame(rows); print(table.to_string(index=False))
    settings = json.loads((report / 'settings.json').read_text()); settings.get('settings', {}).pop('data', None)
    n = metrics['results']['classical']
    out = dict(date=time.strftime('%Y-%m-%d %H:%M'), data=f"RAVDESS {data.name}: {n['n_files']} clips, {n['folds']} speaker folds",
               demo_ran_now=not a.report,
               machine=f"{platform.node()}: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
               seconds=round(time.time() - t0, 1), rows=rows, demo_settings=settings.get('settings'), versions=versions())
    Path(a.out).write_text(json.dumps(out, indent=1, default=str)); print('written', a.out)


if __name__ == '__main__':
    main()
