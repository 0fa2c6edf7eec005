"""params.yaml mistakes stop a stage before any work, with one sentence that names the key."""

import pytest

from tasks.common.errors import UserError
from tasks.common.params import Params, load_params
from tasks.common.policies import RandAugmentPolicy, policy_from_name
from tasks.orchestration.experiments import apply_params
from tests.helpers import PROJECT, run_stage_in

DEFAULTS = (PROJECT / "params.yaml").read_text()


def test_the_committed_params_match_the_schema_defaults():
    assert load_params(PROJECT / "params.yaml") == Params()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("epochs: 10", "epochs: ten"), "train.epochs: Input should be a valid integer"),
        (("epochs: 10", "epocs: 10"), "train.epocs is not a known setting"),
        (("copies: 20", "copies: -1"), "augment.copies: Input should be greater than or equal to 0"),
        (("classes: [pullover, coat]", "classes: [pullover, jumper]"), "ingest.classes.1: Input should be"),
        (("classes: [pullover, coat]", "classes: [coat]"), "ingest.classes: List should have at least 2 items"),
        (("seeds: [0, 1, 2]", "seeds: [0, 0]"), "train.seeds: Value error, list each value only once"),
        (("seeds: [0, 1, 2]", "seeds: [0, -1]"), "train.seeds.1: Input should be greater than or equal to 0"),
        (
            ("arms: [original, augmented, repeated]", "arms: [augmented]"),
            "train.arms: List should have at least 2 items",
        ),
        (
            ("arms: [original, augmented, repeated]", "arms: [augmented, augmented]"),
            "train.arms: Value error, list each value only once",
        ),
        (
            ("arms: [original, augmented, repeated]", "arms: [original, flipped]"),
            "train.arms.1: Input should be 'original', 'augmented', ",
        ),
        (
            ("[[augmented, repeated],", "[[augmented, repeatd],"),
            "decide.comparisons: Value error, 'repeatd' is not an arm: use one of original, augmented, ",
        ),
        (
            ("fill_mode: nearest", "fill_mode: mirror"),
            "augment.policy.seed.fill_mode: Input should be 'nearest', 'constant', 'reflect' or 'wrap'",
        ),
        (
            ("    name: seed", "    name: autoaugment"),
            "augment.policy: unknown name 'autoaugment'; use one of 'seed', 'flip', 'geometric'",
        ),
        (("rotation_range: 40", "rotation: 40"), "augment.policy.seed.rotation is not a known setting"),
        (
            ("rotation_range: 40", "rotation_range: 400"),
            "augment.policy.seed.rotation_range: Input should be less than or equal to 180",
        ),
        (
            ("brightness_range: null", "brightness_range: [1.2, 0.8]"),
            "augment.policy.seed.brightness_range: Value error, give [low, high]",
        ),
        (("format: png", "format: webp"), "augment.format: Input should be 'png' or 'jpeg'"),
        (("train:", "train: ["), "is not valid YAML at line"),
        (("source:", "fashion_mnist_dir:"), "ingest.fashion_mnist_dir is now ingest.source: move its value there"),
        (
            ("batch_size: 32", "batch_size: 32\n  learning_rate: 0.01"),
            "train.learning_rate is now train.model.learning_rate: move its value there",
        ),
        (
            ("batch_size: 32", "batch_size: 32\n  conv_filters: [16]"),
            "train.conv_filters is now train.model.conv_filters: move its value there",
        ),
        (("    name: cnn", "    name: resnet"), "train.model: unknown name 'resnet'; use one of 'cnn'"),
        (("dropout: 0.0", "dropout: 1.0"), "train.model.cnn.dropout: Input should be less than 1"),
        (
            ("split: {val: 0.15, test: 0.15}", "split: {val: 0.5, test: 0.5}"),
            "must be below 1, to leave images for train",
        ),
        (("color_mode: null", "color_mode: colour"), "ingest.color_mode: Input should be 'rgb' or 'grayscale'"),
        (("image_size: null", "image_size: [64]"), "ingest.image_size.1: Field required"),
        (
            ("compare_policies: []", "compare_policies: [flip, flip]"),
            "evaluate.compare_policies: Value error, list each value only once",
        ),
        (
            ("compare_policies: []", "compare_policies: [custom]"),
            "evaluate.compare_policies.0: Input should be 'seed', 'flip', 'geometric', 'color' or 'randaugment'",
        ),
        (("sizes: [25,", "sizes: [0,"), "study.sizes.0: Input should be greater than or equal to 1"),
        (
            ("equivalence_margin: 1.0", "equivalence_margin: 0"),
            "evaluate.equivalence_margin: Input should be greater than 0",
        ),
        (
            ("equivalence_margin: 1.0", "equivalence_margin: one"),
            "evaluate.equivalence_margin: Input should be a valid number",
        ),
    ],
)
def test_a_bad_value_gets_one_sentence_naming_the_key(tmp_path, change, expected):
    path = tmp_path / "params.yaml"
    path.write_text(DEFAULTS.replace(*change, 1))
    with pytest.raises(UserError, match=expected.replace("[", r"\[").replace(".", r"\.")):
        load_params(path)


def test_an_unknown_key_names_the_setting_it_most_likely_meant(tmp_path):
    (tmp_path / "params.yaml").write_text(DEFAULTS.replace("epochs: 10", "epoch: 10"))
    result = run_stage_in(tmp_path, "tasks.common.params")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "augflow: params.yaml: train.epoch is not a known setting: did you mean train.epochs? "
        "Remove it or fix its spelling."
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("trian: {epochs: 2}", "trian is not a known setting: did you mean train? Remove it or fix its spelling."),
        (
            "augment: {policy: {rotation: 10}}",
            "augment.policy.seed.rotation is not a known setting: did you mean augment.policy.seed.rotation_range? "
            "Remove it or fix its spelling.",
        ),
        (
            "augment: {policy: {name: custom, transforms: [{name: RandomRotation, factr: 0.2}]}}",
            "augment.policy.custom.transforms.0.RandomRotation.factr is not a known setting: did you mean "
            "augment.policy.custom.transforms.0.RandomRotation.factor? Remove it or fix its spelling.",
        ),
        (
            "train: {model: {dropuot: 0.5}}",
            "train.model.cnn.dropuot is not a known setting: did you mean train.model.cnn.dropout? "
            "Remove it or fix its spelling.",
        ),
        (
            "train: {dropout: 0.5}",
            "train.dropout is not a known setting; remove it or check its spelling.",
        ),  # nothing close
    ],
)
def test_a_suggestion_comes_from_the_settings_at_the_keys_own_level(tmp_path, params, expected):
    path = tmp_path / "params.yaml"
    path.write_text(params)
    with pytest.raises(UserError) as raised:
        load_params(path)
    assert str(raised.value) == f"{path}: {expected}"


def test_an_unknown_override_key_names_the_setting_it_most_likely_meant(tmp_path):
    (tmp_path / "params.yaml").write_text(DEFAULTS)
    with pytest.raises(UserError) as raised:
        apply_params(tmp_path, ["train.epoch=2"])
    assert str(raised.value) == (
        "overrides ['train.epoch=2']: train.epoch is not a known setting: did you mean train.epochs? "
        "Remove it or fix its spelling."
    )


def test_overrides_of_known_keys_change_only_those_keys(tmp_path):
    (tmp_path / "params.yaml").write_text(DEFAULTS)
    apply_params(tmp_path, ["train.epochs=2", "augment.policy=randaugment"])
    params = load_params(tmp_path / "params.yaml")
    assert params.train.epochs == 2 and params.augment.policy == policy_from_name("randaugment")
    assert params.model_dump(exclude={"train": {"epochs"}, "augment": {"policy"}}) == Params().model_dump(
        exclude={"train": {"epochs"}, "augment": {"policy"}}
    )


def test_a_stage_reports_a_bad_params_file_without_a_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text(DEFAULTS.replace("batch_size: 32", "batch_size: 0"))
    result = run_stage_in(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "augflow: params.yaml: train.batch_size: Input should be greater than or equal to 1 (got 0)."
    ]
    assert not (tmp_path / "data").exists()


def test_a_missing_params_file_says_where_to_run(tmp_path):
    with pytest.raises(UserError, match="not found: run augflow from the project root"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "{name: custom, transforms: [{name: RandomSolarize}]}",
            "augment.policy.custom.transforms.0: unknown name 'RandomSolarize'; use one of 'RandomFlip'",
        ),
        (
            "{name: custom, transforms: [{name: RandomRotation, factor: 2}]}",
            "augment.policy.custom.transforms.0.RandomRotation.factor: Input should be less than or equal to 0.5",
        ),
        (
            "{name: custom, transforms: [{name: RandomGaussianBlur, kernel_size: 4}]}",
            "RandomGaussianBlur.kernel_size: Value error, use an odd kernel size",
        ),
        ("{name: custom, transforms: []}", "augment.policy.custom.transforms: List should have at least 1 item"),
        (
            "{name: randaugment, magnitude: 1.5}",
            "augment.policy.randaugment.magnitude: Input should be less than or equal to 1",
        ),
        ("{name: flip, fill_mode: nearest}", "augment.policy.flip.fill_mode is not a known setting"),
        ("custom", "augment.policy.custom.transforms: Field required"),  # a bare name needs defaults for everything
        ("autoaugment", "augment.policy: unknown name 'autoaugment'"),
    ],
)
def test_a_bad_policy_names_the_key_and_what_is_allowed(tmp_path, policy, expected):
    path = tmp_path / "params.yaml"
    path.write_text(f"augment:\n  policy: {policy}\n")
    with pytest.raises(UserError, match=expected.replace("[", r"\[").replace(".", r"\.")):
        load_params(path)


def test_a_policy_without_a_name_is_the_seed_policy(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("augment:\n  policy: {rotation_range: 10}\n")
    assert load_params(path).augment.policy.rotation_range == 10


def test_a_bare_policy_name_is_that_policy_with_its_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("augment:\n  policy: randaugment\nevaluate:\n  compare_policies: [flip, randaugment]\n")
    params = load_params(path)
    assert params.augment.policy == RandAugmentPolicy(name="randaugment") == policy_from_name("randaugment")
    assert params.arms == ["original", "augmented", "repeated", "flip", "randaugment"]
