"""`InputShape`: one image today, room for inputs of any rank; and training carries one from
``--image-size`` on, while its stored `image_size` (an int, or a list as args.json keeps it)
reads and writes as before."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hardnet_analysis.cli.common.training import image_size
from hardnet_analysis.errors import UsageError
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train.config import TrainConfig, recipe_clashes, resumed_config


def test_one_image_and_its_helpers() -> None:
    shape = InputShape.of_image((360, 480), batch=2)
    assert shape.shapes == ((2, 3, 360, 480),)
    assert (shape.image, shape.hw, shape.batch, shape.channels) == (
        (2, 3, 360, 480),
        (360, 480),
        2,
        3,
    )
    assert InputShape.of_image(224) == InputShape(((1, 3, 224, 224),))


def test_other_inputs_are_held_but_not_read_as_one_image() -> None:
    clip = InputShape(((1, 3, 16, 112, 112),))
    with pytest.raises(ValueError, match="one NCHW image"):
        _ = clip.hw
    with pytest.raises(ValueError, match="positive"):
        InputShape(((1, 0, 224, 224),))


@pytest.mark.parametrize(
    ("stored", "hw", "written"),
    [
        (16, (16, 16), 16),
        ([32, 48], (32, 48), (32, 48)),
        ([16, 16], (16, 16), 16),
        (None, None, None),
    ],
)
def test_training_configs_read_their_stored_image_size(
    stored: object, hw: object, written: object
) -> None:
    """args.json's ``image_size`` (a side; [h, w] as JSON gives a pair back) reads as one
    `InputShape` and is written back as ``--image-size`` always stored it: a square's side (a
    [16, 16] that Python code once gave becomes 16), a rectangle's (h, w)."""
    task = "classification" if stored != [32, 48] else "segmentation"
    config = TrainConfig.from_dict({"model": "m", "data": "d", "image_size": stored, "task": task})
    assert (config.image_size.hw if config.image_size else None) == hw
    assert config.to_dict()["image_size"] == written


@pytest.mark.parametrize("stored", ["16", [16], [16.0, 16.0], True])
def test_a_stored_image_size_of_another_form_is_one_usage_error(stored: object) -> None:
    with pytest.raises(UsageError, match="is not a side N or a pair"):
        TrainConfig.from_dict({"model": "m", "image_size": stored})


def test_image_size_is_parsed_once_into_the_shape_training_carries() -> None:
    """``--image-size`` gives the `InputShape` that the config, the data and evaluation carry
    (batch 1, RGB); a bad size is argparse's error."""
    assert image_size("16") == InputShape.of_image(16) == InputShape(((1, 3, 16, 16),))
    assert image_size("32x48").hw == (32, 48)
    with pytest.raises(argparse.ArgumentTypeError):
        image_size("0")


def test_an_old_checkpoint_resumes_and_names_an_image_size_clash(tmp_path: Path) -> None:
    """A checkpoint whose settings hold ``image_size`` as hda wrote it before the settings
    carried an `InputShape` (an int; a tuple for a rectangle) still resumes, compares equal to
    the same ``--image-size`` and names another as the flag reads."""
    from hardnet_analysis.train.checkpoint import save, stored_config

    old = {"model": "m.json", "dataset": "digits", "image_size": 16, "epochs": 3}
    save(tmp_path / "last.pt", {"config": old, "epoch": 1})
    stored = stored_config(tmp_path / "last.pt")
    resumed = resumed_config(stored, {"image_size": image_size("16")}, str(tmp_path))
    assert resumed.image_size == InputShape.of_image(16) and resumed.resume
    with pytest.raises(UsageError, match=r"--image-size 24 \(the run's: 16\)"):
        resumed_config(stored, {"image_size": image_size("24")}, str(tmp_path))
    rectangle = {"model": "m", "data": "d", "task": "segmentation", "image_size": (32, 48)}
    save(tmp_path / "seg.pt", {"config": rectangle})
    seg = TrainConfig.from_dict(stored_config(tmp_path / "seg.pt"))
    assert seg.image_size == image_size("32x48") and seg.to_dict()["image_size"] == (32, 48)
    asked = seg.replace(image_size=image_size("64"))
    assert recipe_clashes(seg, asked) == ["--image-size 64 (the study's: 32x48)"]


def test_a_models_input_shape_is_its_native_size_and_channels_unless_given() -> None:
    from hardnet_analysis.families.registry import get_definition
    from hardnet_analysis.resolve import input_shape_of

    fc = get_definition("fchardnet70")
    assert input_shape_of(fc) == InputShape.of_image((1024, 2048), channels=fc.in_channels)
    assert input_shape_of(get_definition("hardnet68"), (320, 480), 2).image == (2, 3, 320, 480)
    assert input_shape_of(object(), None, 1, in_channels=1).image == (1, 1, 224, 224)


def test_analyze_takes_an_input_shape_whole_and_the_same_numbers_as_a_size() -> None:
    from hardnet_analysis.analysis import analyze
    from hardnet_analysis.errors import UsageError

    shape = InputShape.of_image((320, 480), batch=2)
    by_shape = analyze("hardnet39ds", shape)
    assert by_shape.input_shape == (2, 3, 320, 480)
    assert by_shape.totals == analyze("hardnet39ds", "320x480", batch=2).totals
    with pytest.raises(UsageError, match="holds the batch"):
        analyze("hardnet39ds", shape, batch=2)
    with pytest.raises(ValueError, match="one NCHW image"):
        analyze("hardnet39ds", InputShape(((1, 3, 16, 112, 112),)))
