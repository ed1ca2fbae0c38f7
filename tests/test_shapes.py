"""`InputShape`: one image today, room for inputs of any rank; and the training config reads its
stored `image_size` (an int, or a list as args.json keeps it) through it."""

from __future__ import annotations

import pytest

from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train.config import TrainConfig


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


@pytest.mark.parametrize(("stored", "hw"), [(16, (16, 16)), ([32, 48], (32, 48)), (None, None)])
def test_training_configs_read_their_stored_image_size(stored: object, hw: object) -> None:
    task = "classification" if stored != [32, 48] else "segmentation"
    config = TrainConfig.from_dict({"model": "m", "data": "d", "image_size": stored, "task": task})
    assert (config.input_shape.hw if config.input_shape else None) == hw
    assert config.to_dict()["image_size"] == (tuple(stored) if isinstance(stored, list) else stored)


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
