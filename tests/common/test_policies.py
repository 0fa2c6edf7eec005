"""The non-seed augmentation policies do what docs/augmentation.md says they do, copy by copy.

`flip` only mirrors; `color` changes intensities within its ranges and leaves every pixel where it
was; `geometric` moves content within its ranges and leaves a constant image as it was;
`randaugment` applies `num_ops` operations of its menu at `magnitude`; `custom` applies its list,
geometric transforms first and the others in list order. Each test measures copies made by
make_copy, as the augment stage and the online arm make them; the seed policy has its own tests
in test_augment.py.
"""

from collections import Counter

import cv2
import numpy as np
import pytest

from tasks.common.copies import copy_rng, make_copy
from tasks.common.files import pixel_sha256
from tasks.common.params import AugmentParams
from tasks.common.policies import RandAugmentPolicy


def copies(pixels: np.ndarray, policy: dict, count: int, sha256: str | None = None) -> list[np.ndarray]:
    """Copies 0..count-1 of an image under a policy; a given hash makes several images get the same draws."""
    params = AugmentParams.model_validate({"policy": policy})
    return [make_copy(pixels, sha256 or pixel_sha256(pixels), copy, params) for copy in range(count)]


def spans(strengths: list[float], factor: float, slack: float) -> None:
    """Every measured strength in [-factor, factor] (up to slack), and draws near both ends: a uniform range."""
    low, high = min(strengths), max(strengths)
    assert -factor - slack <= low < -0.9 * factor and 0.9 * factor < high <= factor + slack, (low, high, factor)


@pytest.mark.parametrize("horizontal, vertical", [(True, False), (False, True), (True, True)])
def test_flip_only_mirrors_and_makes_each_allowed_mirror_as_often_as_the_others(horizontal, vertical):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)
    mirrors = {
        "none": pixels,
        "left-right": np.fliplr(pixels),
        "top-bottom": np.flipud(pixels),
        "both": np.flipud(np.fliplr(pixels)),
    }
    allowed = {"none", *(["left-right"] if horizontal else []), *(["top-bottom"] if vertical else [])}
    allowed |= {"both"} if horizontal and vertical else set()
    made = copies(pixels, {"name": "flip", "horizontal": horizontal, "vertical": vertical}, 400)
    seen = Counter(
        next((name for name, image in mirrors.items() if np.array_equal(copy, image)), "other") for copy in made
    )
    assert set(seen) == allowed  # no other change, and no mirror that is not allowed
    assert all(abs(count / 400 - 1 / len(allowed)) < 0.1 for count in seen.values()), seen  # each flip: probability 1/2


@pytest.mark.parametrize("channels", [1, 3])
def test_color_leaves_every_pixel_in_place_giving_equal_colours_equal_colours(channels):
    """Colour is a map of each pixel's value: a region of one colour in the original stays one colour, where it was."""
    rng = np.random.default_rng(0)
    palette = rng.integers(40, 216, size=(6, channels), dtype=np.uint8)
    layout = rng.integers(0, 6, size=(16, 20))
    pixels = palette[layout].squeeze()
    made = copies(pixels, {"name": "color"}, 100)
    for copy in made:
        assert copy.shape == pixels.shape
        for colour in range(6):
            region = copy[layout == colour]
            assert (region == region[0]).all()
    assert sum(not np.array_equal(copy, pixels) for copy in made) > 90  # intensities change


def brightness(original: np.ndarray, copy: np.ndarray) -> float:
    """RandomBrightness adds one amount to every value: that amount / 255."""
    added = copy.astype(int) - original
    assert (added == added.flat[0]).all()
    return added.flat[0] / 255


def contrast(original: np.ndarray, copy: np.ndarray) -> float:
    """RandomContrast scales every value's distance to its channel's mean by one factor: that factor - 1."""
    mean = original.mean(axis=(0, 1))
    before, after = original - mean, copy - mean
    scale = (before * after).sum() / (before * before).sum()
    assert np.abs(after - scale * before).max() <= 1  # one scale for every pixel and channel, up to rounding
    return scale - 1


def saturation(original: np.ndarray, copy: np.ndarray) -> float:
    """RandomSaturation scales every pixel's distance to its own grey (luma) by one factor: that factor - 1."""
    grey = (original @ np.array([0.299, 0.587, 0.114]))[..., None]
    before, after = original - grey, copy - grey
    scale = (before * after).sum() / (before * before).sum()
    assert np.abs(after - scale * before).max() <= 1.5  # OpenCV's grey is rounded to a level, then the blend
    return scale - 1


def hue(original: np.ndarray, copy: np.ndarray) -> float:
    """RandomHue turns every pixel's hue by one angle and keeps its value and saturation: the angle / 180 degrees."""
    before, after = (cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2HSV) for image in (original, copy))
    coloured = original.max(axis=2) - original.min(axis=2) >= 20  # a hue to measure, not lost in rounding
    assert np.abs(after[..., 1:] - before[..., 1:]).max() < 0.03
    turns = ((after[..., 0] - before[..., 0] + 180) % 360 - 180)[coloured]
    turn = np.median(turns)
    assert np.abs((turns - turn + 180) % 360 - 180).max() < 3  # one angle for every pixel, up to rounding
    return turn / 180


@pytest.mark.parametrize(
    "setting, factor, measure",
    [("brightness", 0.2, brightness), ("contrast", 0.5, contrast), ("saturation", 0.4, saturation), ("hue", 0.1, hue)],
)
def test_each_color_setting_changes_intensities_as_its_keras_layer_within_its_documented_range(
    setting, factor, measure
):
    """One setting at a time, the others 0: on mid-tone colours (nothing clipped), each copy is that one change,
    and its strength is drawn uniformly in [-factor, factor] of the documented unit."""
    rng = np.random.default_rng(0)
    grey = rng.integers(105, 146, size=(14, 18, 1))
    tint = np.array([20, 0, -20])  # channels of different means
    pixels = (grey + tint + rng.integers(-25, 26, size=(14, 18, 3))).astype(np.uint8)
    policy = {"name": "color", "brightness": 0, "contrast": 0, "saturation": 0, "hue": 0} | {setting: factor}
    strengths = [measure(pixels.astype(float), copy.astype(float)) for copy in copies(pixels, policy, 300)]
    spans(strengths, factor, 0.01)


SHAPE = (36, 44)  # not square, so that a height's range used for the width shows
CENTRE = np.array([(SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2])  # (x, y)
BLOBS = np.array([(6.0, 2.0), (-3.0, 6.0), (-4.0, -5.0)])  # three points about the centre, not in a line


def blob(at: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(SHAPE)
    x, y = CENTRE + at
    return np.rint(200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5**2))).astype(np.uint8)


def centroid(image: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(image.shape)
    weights = image.astype(float)
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum() - CENTRE


def affine_maps(policy: dict, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(A, b) with copy point = A · original point + b (about the centre, x then y), for copies 0..count-1: measured on
    three images of one blob each, given one hash so that copy j of each gets the same draw."""
    images = [blob(at) for at in BLOBS]
    before = np.array([centroid(image) for image in images])
    per_image = [copies(image, policy, count, sha256="ab" * 32) for image in images]
    maps = []
    for copy in zip(*per_image):
        after = np.array([centroid(image) for image in copy])
        solution = np.linalg.solve(np.column_stack([before, np.ones(3)]), after)
        maps.append((solution[:2].T, solution[2]))
    return maps


def rotation(a: np.ndarray, b: np.ndarray) -> list[float]:
    """A turn about the centre: the turn, as a fraction of a full one."""
    assert np.abs(a @ a.T - np.eye(2)).max() < 0.02 and np.abs(b).max() < 0.2
    return [np.arctan2(a[1, 0], a[0, 0]) / (2 * np.pi)]


def zoom(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Both axes scaled alike about the centre, by 1 / (1 + drawn zoom): that zoom (positive: the content shrinks)."""
    assert abs(a[0, 0] - a[1, 1]) < 0.02 and np.abs(a[[0, 1], [1, 0]]).max() < 0.02 and np.abs(b).max() < 0.2
    return [1 / a[0, 0] - 1]


def translation(a: np.ndarray, b: np.ndarray) -> list[float]:
    """A shift alone: its x part as a fraction of the width, its y part of the height."""
    assert np.abs(a - np.eye(2)).max() < 0.02
    return [b[0] / SHAPE[1], b[1] / SHAPE[0]]


def shear(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Original point = [[1, x], [y, 1]] · copy point: the two shear coefficients."""
    inverse = np.linalg.inv(a)
    assert np.abs(np.diag(inverse) - 1).max() < 0.02 and np.abs(b).max() < 0.2
    return [inverse[0, 1], inverse[1, 0]]


@pytest.mark.parametrize(
    "setting, factor, measure, slack",
    [("rotation", 0.1, rotation, 0.003), ("zoom", 0.3, zoom, 0.02), ("translation", 0.1, translation, 0.005)]
    + [("shear", 0.2, shear, 0.02)],
)
def test_each_geometric_setting_moves_content_as_its_keras_layer_within_its_documented_range(
    setting, factor, measure, slack
):
    policy = {"name": "geometric", "rotation": 0, "zoom": 0, "translation": 0, "shear": 0, "horizontal_flip": False}
    strengths = [measure(a, b) for a, b in affine_maps(policy | {setting: factor}, 200)]
    for axis in zip(*strengths):  # x and y each on their own
        spans(list(axis), factor, slack)


def test_geometrics_flip_mirrors_left_right_half_the_time():
    policy = {"name": "geometric", "rotation": 0, "zoom": 0, "translation": 0, "shear": 0, "horizontal_flip": True}
    maps = affine_maps(policy, 200)
    assert all(np.abs(b).max() < 0.05 for _, b in maps)
    mirrored = [np.abs(a - np.diag([-1, 1])).max() < 0.01 for a, _ in maps]
    assert all(mirror or np.abs(a - np.eye(2)).max() < 0.01 for mirror, (a, _) in zip(mirrored, maps))
    assert abs(np.mean(mirrored) - 0.5) < 0.1


@pytest.mark.parametrize("fill_mode", ["reflect", "nearest", "wrap"])
def test_geometric_leaves_a_constant_image_constant_whatever_it_draws(fill_mode):
    """Resampling moves values and mixes neighbours, never makes new ones; the fill modes repeat the image's own."""
    rng = np.random.default_rng(0)
    pixels = np.full((20, 24, 3), 173, dtype=np.uint8)
    policy = {"name": "geometric", "rotation": 0.25, "zoom": 0.5, "fill_mode": fill_mode}
    assert all(np.array_equal(copy, pixels) for copy in copies(pixels, policy, 50, sha256="ef" * 32))
    pattern = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)  # the same draws move a pattern
    assert all(not np.array_equal(copy, pattern) for copy in copies(pattern, policy, 50, sha256="ef" * 32))


def test_randaugment_draws_num_ops_operations_from_its_documented_menu_at_magnitude_times_their_maximum():
    menu = [  # docs/augmentation.md's, each operation with its maximum
        ("RandomRotation", "factor", 30 / 360),  # 30 degrees
        ("RandomShear", "x_factor", 0.3),
        ("RandomShear", "y_factor", 0.3),
        ("RandomTranslation", "width_factor", 0.3),
        ("RandomTranslation", "height_factor", 0.3),
        ("RandomBrightness", "factor", 0.3),
        ("RandomContrast", "factor", 0.9),
        ("RandomSaturation", "factor", 0.9),
        ("RandomHue", "factor", 0.1),
    ]
    policy = RandAugmentPolicy(name="randaugment", num_ops=3, magnitude=0.6)
    drawn = [policy.operations(copy_rng(0, "cd" * 32, copy)) for copy in range(900)]
    assert all(len(operations) == 3 for operations in drawn)
    strengths = Counter()
    for operation in (operation for operations in drawn for operation in operations):
        settings = operation.model_dump(exclude={"name"})
        strong = [(key, value) for key, value in settings.items() if value]  # the one setting it draws from
        assert len(strong) == 1, operation
        strengths[operation.name, strong[0][0], round(strong[0][1], 9)] += 1
    assert set(strengths) == {(name, key, round(0.6 * maximum, 9)) for name, key, maximum in menu}
    assert all(abs(count / (3 * 900) - 1 / 9) < 0.03 for count in strengths.values())  # drawn uniformly


def test_randaugment_changes_nothing_at_magnitude_0_and_more_with_each_operation_and_magnitude_step():
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    pixels = cv2.resize(coarse, (24, 20), interpolation=cv2.INTER_LINEAR)  # smooth: a change grows with its strength

    def change(num_ops: int, magnitude: float) -> float:
        made = copies(pixels, {"name": "randaugment", "num_ops": num_ops, "magnitude": magnitude}, 150)
        return float(np.mean([np.abs(copy.astype(int) - pixels).mean() for copy in made]))

    assert change(4, 0.0) == 0
    by_magnitude = [change(2, magnitude) for magnitude in (0.1, 0.4, 1.0)]
    by_operations = [change(num_ops, 0.5) for num_ops in (1, 2, 4)]
    assert 0 < by_magnitude[0] < by_magnitude[1] < by_magnitude[2]
    assert by_operations[0] < by_operations[1] < by_operations[2]


PRESETS = [  # each named policy, as the custom list docs/augmentation.md says it is
    ({"name": "flip", "vertical": True}, [{"name": "RandomFlip", "mode": "horizontal_and_vertical"}], "nearest"),
    (
        {"name": "color"},
        [
            {"name": "RandomBrightness", "factor": 0.2},
            {"name": "RandomContrast", "factor": 0.2},
            {"name": "RandomSaturation", "factor": 0.2},
            {"name": "RandomHue", "factor": 0.05},
        ],
        "nearest",
    ),
    (
        {"name": "geometric"},
        [
            {"name": "RandomRotation", "factor": 0.1},
            {"name": "RandomZoom", "height_factor": 0.1},
            {"name": "RandomTranslation", "height_factor": 0.1, "width_factor": 0.1},
            {"name": "RandomShear", "x_factor": 0.1, "y_factor": 0.1},
            {"name": "RandomFlip", "mode": "horizontal"},
        ],
        "reflect",
    ),
]


@pytest.mark.parametrize("named, transforms, fill_mode", PRESETS, ids=["flip", "color", "geometric"])
def test_a_named_policy_makes_the_copies_of_the_custom_list_it_stands_for(named, transforms, fill_mode):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, 22, 3), dtype=np.uint8)
    custom = {"name": "custom", "transforms": transforms, "fill_mode": fill_mode}
    assert all(np.array_equal(a, b) for a, b in zip(copies(pixels, named, 40), copies(pixels, custom, 40)))


def erased(original: np.ndarray, copy: np.ndarray) -> tuple[slice, slice]:
    """The one rectangle where copy differs from original."""
    rows, columns = np.nonzero(copy != original)
    box = slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1)
    assert (copy != original).sum() == copy[box].size  # all of the rectangle differs, nothing outside it
    return box


def zeros_box(copy: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of a copy's 0 pixels."""
    rows, columns = np.nonzero(copy == 0)
    return slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1)


def test_custom_applies_exactly_its_list_geometric_transforms_first_then_the_others_in_list_order():
    rng = np.random.default_rng(0)
    pixels = rng.integers(40, 216, size=(20, 24), dtype=np.uint8)  # mid-tones: no 0, and none clipped by brightness
    erase = {"name": "RandomErasing", "scale": [0.1, 0.2], "fill_value": 0}
    for copy in copies(pixels, {"name": "custom", "transforms": [erase]}, 50):  # one rectangle of 0, nothing else
        box = erased(pixels, copy)
        assert (copy[box] == 0).all() and 0.1 * 0.8 <= copy[box].size / pixels.size <= 0.2 * 1.25
    grey = erase | {"fill_value": 128}
    brighten = {"name": "RandomBrightness", "factor": 0.1}
    last = copies(pixels, {"name": "custom", "transforms": [brighten, grey]}, 50)
    first = copies(pixels, {"name": "custom", "transforms": [grey, brighten]}, 50)
    assert all((copy == 128).mean() > 0.08 for copy in last)  # erased after the brightness: the patch stays 128
    assert sum((copy == 128).mean() > 0.08 for copy in first) < 5  # erased, then brightened: the patch moves off 128
    turned = copies(pixels, {"name": "custom", "transforms": [erase, {"name": "RandomRotation"}]}, 50)
    assert all((copy[zeros_box(copy)] == 0).all() for copy in turned)  # listed first, yet erased after the turn
    never = [{"name": name, "factor": 0} for name in ("RandomErasing", "RandomGaussianBlur", "RandomPerspective")]
    assert all(np.array_equal(copy, pixels) for copy in copies(pixels, {"name": "custom", "transforms": never}, 20))
    half = copies(pixels, {"name": "custom", "transforms": [erase | {"factor": 0.5}]}, 200)
    assert abs(np.mean([np.array_equal(copy, pixels) for copy in half]) - 0.5) < 0.1  # factor: the probability
