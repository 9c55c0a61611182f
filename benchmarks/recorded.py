"What a benchmark records beside its figures: its settings, with no path of the machine it ran on."
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent   # the project


def recorded_settings(a) -> dict:
    "`vars(a)` of parsed arguments; a path inside the project is written relative to it (`benchmarks/results/...`)."
    def rel(v):
        if not isinstance(v, str) or not Path(v).is_absolute(): return v
        try: return str(Path(v).resolve().relative_to(ROOT))
        except ValueError: return v                 # outside the project: as the user gave it
    return {k: rel(v) for k, v in vars(a).items()}
