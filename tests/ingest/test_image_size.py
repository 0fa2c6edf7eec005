"""ingest.image_size null keeps a folder's own image size (capped), and ingest says before training what it will
train at and how long that should take on this machine."""

import json

import pytest

from tasks.common.params import IngestParams, Params
from tasks.common.times import record_seconds
from tasks.ingest.images import OWN_SIZE_CAP, own_size, upright_size
from tasks.ingest.stage import ingest, training_plan
from tests.helpers import stored_images
from tests.pictures import class_folders, picture, save

SHAPES = {"cats": "ellipse", "dogs": "rectangle"}


def ingested_size(tmp_path, source) -> list[int]:
    ingest(
        IngestParams(source=str(source), min_per_class=2),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "report.json",
        tmp_path / "cache",
    )
    sizes = {pixels.shape[1::-1] for _, _, pixels in stored_images(tmp_path / "raw").values()}
    assert len(sizes) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    ((width, height),) = sizes
    assert report["image_size"] == [height, width]
    return [height, width]


def test_a_folder_of_one_size_keeps_it(tmp_path):
    source = class_folders(tmp_path / "photos", SHAPES, 12, size=(48, 40))  # width 48, height 40
    assert ingested_size(tmp_path, source) == [40, 48]


def test_larger_photos_are_scaled_to_the_cap_on_their_longer_side_keeping_their_shape(tmp_path):
    source = class_folders(tmp_path / "photos", SHAPES, 12, size=(400, 300))
    assert ingested_size(tmp_path, source) == [OWN_SIZE_CAP * 3 // 4, OWN_SIZE_CAP]


def test_mixed_sizes_take_the_most_common_and_an_explicit_size_wins(tmp_path):
    source = class_folders(tmp_path / "photos", SHAPES, 12, size=(48, 40))
    save(picture(99, size=(30, 60)), source / "cats" / "tall.jpg")
    assert own_size([(40, 48)] * 3 + [(60, 30)]) == (40, 48)
    assert own_size([(40, 48), (60, 30)]) == (60, 30)  # a tie: the larger size, whatever the order
    assert ingested_size(tmp_path, source) == [40, 48]
    explicit = IngestParams(source=str(source), image_size=(16, 24), min_per_class=2)
    ingest(explicit, tmp_path / "raw2", tmp_path / "sets2", tmp_path / "report2.json", tmp_path / "cache")
    assert {pixels.shape[:2] for _, _, pixels in stored_images(tmp_path / "raw2").values()} == {(16, 24)}


def test_a_photo_turned_by_its_exif_orientation_counts_upright_and_a_non_image_counts_not(tmp_path):
    image = picture(1, size=(48, 40))
    exif = image.getexif()
    exif[0x0112] = 6  # stored landscape, shown turned a quarter
    path = save(image, tmp_path / "turned.jpg", exif=exif)
    assert upright_size(path, 10**6) == (48, 40)
    (tmp_path / "note.jpg").write_text("not an image")
    assert upright_size(tmp_path / "note.jpg", 10**6) is None
    assert upright_size(path, 100) is None  # over ingest.max_pixels: refused later, not counted


@pytest.fixture
def fashion_mnist(tmp_path):
    params = Params.model_validate(
        {"ingest": {"train_per_class": 10, "val_per_class": 2, "test_per_class": 1}, "train": {"seeds": [0, 1]}}
    )
    ingest(params.ingest, tmp_path / "raw", tmp_path / "sets", tmp_path / "report.json", seeds=params.train.seeds)
    return params, tmp_path


def test_the_training_plan_says_so_when_nothing_was_timed_yet(fashion_mnist):
    params, folder = fashion_mnist
    plan = training_plan(params, folder / "raw", folder / "sets", folder / "times")
    assert plan == (
        "ingest: training at 28x28 grayscale, 20 images per seed; 6 training runs; no training run has been timed "
        "on this machine yet, so no estimate of their time."
    )


def test_the_training_plan_estimates_from_the_speed_of_runs_timed_here(fashion_mnist):
    params, folder = fashion_mnist
    model = folder / "model.keras"
    model.write_bytes(b"a model")
    # 20 images, 28x28x1, 10 epochs in 60 s: 156,800 pixels shown, 2,613.3 a second.
    record_seconds(model, 60, folder / "times", pixels_shown=20 * 784 * 10)
    # original 20 + augmented 420 + repeated 420 images per epoch, 2 seeds, 10 epochs, 784 pixels each:
    # 860 x 2 x 10 x 784 pixels at 2,613.3 a second is 5,160 s, 86 min.
    plan = training_plan(params, folder / "raw", folder / "sets", folder / "times")
    assert plan.endswith(
        "6 training runs: about 86 min of training one at a time, at the speed of the 1 run timed here."
    )
