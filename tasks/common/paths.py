"""Every path augflow reads or writes, relative to the project's folder, declared once.

dvc.yaml names the same paths for DVC (tests/common/test_paths.py checks that the two agree).
"""

from pathlib import Path

PARAMS_FILE = Path("params.yaml")

# Data: what ingest and augment write (DVC outputs).
DATA_DIR = Path("data")
RAW_DIR = DATA_DIR / "raw"  # train/, val/ and test/: one folder of sheets per class, and the split's index
TRAIN_DIR = RAW_DIR / "train"
VAL_DIR = RAW_DIR / "val"
TEST_DIR = RAW_DIR / "test"
RAW_MANIFEST = RAW_DIR / "manifest.csv"  # every ingested image with its split, class and source
SPLIT_INDEX = "index.csv"  # in each split's folder: where each of its images is, as a set file lists them
SETS_DIR = DATA_DIR / "sets"  # each arm's training sets, one CSV per seed: data/sets/<arm>/seed-<s>.csv
ORIGINAL_SETS = SETS_DIR / "original"
AUGMENTED_SETS = SETS_DIR / "augmented"
AUGMENTED_DIR = DATA_DIR / "augmented"  # the augmented copies, one strip per image, updated from its manifest.json


def policy_augmented_dir(policy: str) -> Path:
    """A compared policy's copies (evaluate.compare_policies): data/augmented-<policy>."""
    return AUGMENTED_DIR.with_name(f"{AUGMENTED_DIR.name}-{policy}")


# Models and reports.
MODELS_DIR = Path("models")  # models/<arm>/seed-<s>.keras
REPORTS_DIR = Path("reports")
INGEST_REPORT = REPORTS_DIR / "ingest_report.json"
PREVIEW = REPORTS_DIR / "augment_preview.png"
LIVE_DIR = REPORTS_DIR / "train"  # the training runs' curves (dvclive), one folder per (arm, seed)
REPORT = REPORTS_DIR / "report.md"
REPORT_HTML = REPORTS_DIR / "report.html"  # the same, self-contained
PLOTS_DIR = REPORTS_DIR / "plots"
METRICS = REPORTS_DIR / "metrics.json"
HEADLINE = REPORTS_DIR / "headline.json"
PREDICTIONS_DIR = REPORTS_DIR / "predictions"
SCALING = REPORTS_DIR / "scaling.json"  # the scaling study's summary
SCALING_PLOT = SCALING.with_suffix(".png")
DECIDE_JSON = REPORTS_DIR / "decide.json"
DECIDE_MD = REPORTS_DIR / "decide.md"

# The scaling study: a DVC project of its own.
STUDY_DIR = Path("study")
STUDY_RUNS_DIR = STUDY_DIR / "runs"

# augflow's own records, outside every stage's outputs (ignored by git and DVC).
STATE_DIR = Path(".augflow")
TIMES_DIR = STATE_DIR / "times"  # each model's measured training time
RESUME_DIR = STATE_DIR / "resume"  # a killed training run's state
DECODED_DIR = STATE_DIR / "decoded"  # sets too large for memory, decoded once per run (unnamed files)
LOCK_FILE = STATE_DIR / "run.lock"  # who holds the project
PUBLISHED_DIR = STATE_DIR / "reports"  # each flow run's HTML report, kept after its workspace is gone
INGEST_CACHE_DIR = Path(".cache/ingest")  # decoded own images, by file hash
WORKTREES_DIR = Path(".dvc/tmp/augflow-experiments")  # what-if experiments' worktrees
WORKER_DIR = Path("augflow-worker")  # under a Dask worker's working directory: stages/ (scratch) and cache/
