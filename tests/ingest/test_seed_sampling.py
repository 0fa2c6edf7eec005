"""Each train seed draws its own share of an image folder's training split (ingest.seed_sample)."""

import hashlib

import pytest

from tasks.common.files import read_csv
from tasks.common.params import IngestParams
from tasks.ingest.stage import ingest, seed_samples
from tests.pictures import class_folders


def image_id(label: str, number: int) -> str:
    """A content id as ingest makes them: 16 hex digits of a hash."""
    return hashlib.sha256(f"{label}-{number}".encode()).hexdigest()[:16]


def manifest(per_class: dict[str, int], held_out: int = 3) -> list[dict]:
    """Manifest rows: per_class training images of each class, and a few val and test images each."""
    rows = [
        {"id": image_id(label, n), "class": label, "split": "train"}
        for label, count in per_class.items()
        for n in range(count)
    ]
    for split in ("val", "test"):
        rows += [
            {"id": image_id(f"{split}-{label}", n), "class": label, "split": split}
            for label in per_class
            for n in range(held_out)
        ]
    return rows


ROWS = manifest({"cats": 20, "dogs": 7})
TRAIN = {
    label: {row["id"] for row in ROWS if row["split"] == "train" and row["class"] == label}
    for label in ("cats", "dogs")
}


def per_class(ids: set[str]) -> dict[str, int]:
    return {label: len(ids & members) for label, members in TRAIN.items()}


@pytest.mark.parametrize(
    ("fraction", "counts"),
    [(0.5, {"cats": 10, "dogs": 4}), (0.8, {"cats": 16, "dogs": 6}), (0.01, {"cats": 1, "dogs": 1})],
)
def test_each_seed_draws_its_own_share_of_each_class(fraction, counts):
    samples = seed_samples(ROWS, 0, [0, 1, 2, 3], fraction)
    for ids in samples.values():
        assert ids <= TRAIN["cats"] | TRAIN["dogs"]  # never a val or test image
        assert per_class(ids) == counts  # 3.5 dogs round to 4, 5.6 to 6; at least one
    if fraction > 0.01:
        assert len({frozenset(ids) for ids in samples.values()}) == 4  # every seed's set differs


def test_adding_a_seed_or_an_image_changes_no_other_draw_beyond_the_edge():
    before = seed_samples(ROWS, 0, [0, 1], 0.5)
    added = seed_samples(ROWS, 0, [0, 1, 7], 0.5)
    assert {seed: added[seed] for seed in (0, 1)} == before and added[7] not in before.values()
    assert seed_samples(ROWS, 0, [1], 0.5)[1] == before[1]  # a seed's draw is its own, whatever the others
    grown = seed_samples(ROWS + [{"id": image_id("cats", 99), "class": "cats", "split": "train"}], 0, [0, 1], 0.5)
    for seed, ids in before.items():  # 21 cats round to 11: the new image and at most one other come in
        assert ids <= grown[seed] and len(grown[seed] - ids) == 1
    assert seed_samples(ROWS, 1, [0], 0.5)[0] != before[0]  # ingest.seed keys the draw too


def test_a_fraction_of_one_gives_every_seed_every_training_image():
    assert seed_samples(ROWS, 0, [0, 1], 1.0) == dict.fromkeys([0, 1], TRAIN["cats"] | TRAIN["dogs"])


def test_ingest_writes_each_seeds_draw_and_one_keeps_todays_sets(tmp_path):
    source = class_folders(tmp_path / "photos", {"cats": "ellipse", "dogs": "rectangle"}, 14, size=(16, 16))
    written = {}
    for fraction in (0.5, 1.0):
        out = tmp_path / str(fraction)
        params = IngestParams(source=str(source), image_size=(16, 16), min_per_class=2, seed_sample=fraction)
        ingest(params, out / "raw", out / "sets", out / "report.json", tmp_path / "cache", seeds=[0, 1])
        train = [row for row in read_csv(out / "raw/manifest.csv") if row["split"] == "train"]
        written[fraction] = {seed: read_csv(out / f"sets/original/seed-{seed}.csv") for seed in (0, 1)}
        for rows in written[fraction].values():
            for label in ("cats", "dogs"):
                total = sum(row["class"] == label for row in train)
                assert sum(row["class"] == label for row in rows) == (total if fraction == 1 else int(total / 2 + 0.5))
            assert {row["sha256"] for row in rows} <= {row["sha256"] for row in train}
            assert len({row["id"] for row in rows}) == len(rows)  # no image twice
    assert written[0.5][0] != written[0.5][1]
    assert written[1.0][0] == written[1.0][1]
    assert len(written[1.0][0]) == len(train)  # today's: all of them, for every seed
