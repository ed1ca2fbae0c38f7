"""Analytic graph of an FC-HarDNet definition, node names as the official module layout's.

Layout (``PingoLH/FCHarDNet``, class ``hardnet``): ``base`` holds the stem's ConvLayers, then
per encoder stage its HarDBlock, its 1x1 ConvLayer and (all but the last) an AvgPool2d;
``transUpBlocks.j`` resamples and concatenates (no parameters), ``conv1x1_up.j`` and
``denseBlocksUp.j`` are decoder stage j's; ``finalConv`` is the head's conv, followed by the
forward's own ``interpolate``.

Blocks, for the per-block view: ``stem``; ``encoder{i}`` (HarDBlock i) and ``transition{i}``
(its 1x1 conv and pooling); ``skip{i}`` (upsampling to skip i and the concatenation);
``decoder{i}`` (the 1x1 conv and the HarDBlock that follow); ``head``. Decoder and skip i pair
with encoder i, so FC-HarDNet-70 runs skip4/decoder4 first and skip1/decoder1 last.

The network is built part by part (stem, encoder stages, decoder stages, head) and each part can
be built alone as a fragment fed by input nodes of given shapes, for the architecture search.
"""

from __future__ import annotations

from functools import partial

import networkx as nx

from hardnet_analysis.families.fchardnet.definition import FCHarDNetDef
from hardnet_analysis.families.hardnet.graph import conv_layer, hard_block
from hardnet_analysis.families.parts import NETWORK_INPUT, Part
from hardnet_analysis.graph.analytic import AnalyticBuilder
from hardnet_analysis.graph.ir import Shape

ACTIVATION = "relu"


def encoder_offset(defn: FCHarDNetDef, stage: int) -> int:
    """The ``base`` index of encoder stage `stage`'s (0-based) HarDBlock: 3 modules per pooled
    stage after the stem, so FC-HarDNet-70's are 4, 7, 10, 13 and 16."""
    return len(defn.stem.channels) + 3 * stage


def skip_number(defn: FCHarDNetDef, up: int) -> int:
    """The 1-based encoder stage whose skip decoder stage `up` (0-based, execution order)
    meets: FC-HarDNet-70's decoder stage 0 meets skip 4."""
    return len(defn.encoder) - 1 - up


def add_stem(b: AnalyticBuilder, x: str, defn: FCHarDNetDef) -> str:
    """The stem as ``base.0`` to ``base.{n-1}``."""
    b.block = "stem"
    for i, (width, stride) in enumerate(zip(defn.stem.channels, defn.stem.strides, strict=True)):
        x = conv_layer(b, x, f"base.{i}", width, 3, stride, ACTIVATION)
    return x


def add_encoder(b: AnalyticBuilder, x: str, defn: FCHarDNetDef, stage: int) -> tuple[str, str]:
    """Encoder stage `stage` (0-based): returns (its output, its HarDBlock's output = the skip)."""
    index = encoder_offset(defn, stage)
    spec = defn.encoder[stage]
    b.block = f"encoder{stage + 1}"
    skip = hard_block(b, x, f"base.{index}", spec.block, ACTIVATION)
    b.block = f"transition{stage + 1}"
    x = conv_layer(b, skip, f"base.{index + 1}", spec.transition_channels, 1, 1, ACTIVATION)
    if stage < len(defn.encoder) - 1:
        x = b.pool(x, f"base.{index + 2}", "avg", 2, 2)
    return x, skip


def add_decoder(b: AnalyticBuilder, x: str, skip: str, defn: FCHarDNetDef, up: int) -> str:
    """Decoder stage `up` (0-based, execution order) on output `x` and skip `skip`."""
    number = skip_number(defn, up)
    b.block = f"skip{number}"
    size = b.shape(skip)[2:]
    x = b.interpolate(x, f"transUpBlocks.{up}", (size[0], size[1]))
    x = b.concat([x, skip], f"transUpBlocks.{up}")
    b.block = f"decoder{number}"
    x = conv_layer(b, x, f"conv1x1_up.{up}", b.shape(x)[1] // 2, 1, 1, ACTIVATION)
    return hard_block(b, x, f"denseBlocksUp.{up}", defn.decoder[up], ACTIVATION)


def add_head(b: AnalyticBuilder, x: str, defn: FCHarDNetDef, input_hw: tuple[int, int]) -> str:
    """``finalConv`` (1x1, bias) and the upsampling to the input's `input_hw`."""
    b.block = "head"
    x = b.conv(x, "finalConv", defn.num_classes, 1, bias=True)
    return b.interpolate(x, "interpolate", input_hw)


def build_fchardnet_graph(defn: FCHarDNetDef, input_shape: tuple[int, int, int, int]) -> nx.DiGraph:
    """The DAG of `defn` for an NCHW `input_shape`."""
    b = AnalyticBuilder(defn.name)
    x = add_stem(b, b.input(input_shape), defn)
    skips = []
    for stage in range(len(defn.encoder)):
        x, skip = add_encoder(b, x, defn, stage)
        skips.append(skip)
    for up in range(len(defn.decoder)):
        x = add_decoder(b, x, skips[-2 - up], defn, up)
    b.output(add_head(b, x, defn, (input_shape[2], input_shape[3])))
    return b.graph


def _fragment(b: AnalyticBuilder, *outputs: str) -> nx.DiGraph:
    for i, x in enumerate(outputs):
        b.output(x, f"output{i}")
    return b.graph


def stem_fragment(defn: FCHarDNetDef, input_shape: Shape) -> nx.DiGraph:
    """The stem alone; its output node is ``output0``."""
    b = AnalyticBuilder(f"{defn.name}:stem")
    return _fragment(b, add_stem(b, b.input(input_shape), defn))


def encoder_fragment(defn: FCHarDNetDef, stage: int, in_shape: Shape) -> nx.DiGraph:
    """Encoder stage `stage` alone: outputs ``output0`` (to the next stage) and ``output1``
    (the skip)."""
    b = AnalyticBuilder(f"{defn.name}:encoder{stage + 1}")
    return _fragment(b, *add_encoder(b, b.input(in_shape), defn, stage))


def decoder_fragment(defn: FCHarDNetDef, up: int, in_shape: Shape, skip_shape: Shape) -> nx.DiGraph:
    """Decoder stage `up` alone, fed by the previous part's output and the skip."""
    b = AnalyticBuilder(f"{defn.name}:decoder{skip_number(defn, up)}")
    x, skip = b.input(in_shape), b.input(skip_shape, "skip")
    return _fragment(b, add_decoder(b, x, skip, defn, up))


def head_fragment(defn: FCHarDNetDef, in_shape: Shape, input_hw: tuple[int, int]) -> nx.DiGraph:
    """The head alone, upsampling to the network input's `input_hw`."""
    b = AnalyticBuilder(f"{defn.name}:head")
    return _fragment(b, add_head(b, b.input(in_shape), defn, input_hw))


def search_parts(defn: FCHarDNetDef, input_shape: Shape) -> tuple[Part, ...]:
    """Stem; encoder stages (outputs: to the next stage, the skip); decoder stages, each reading
    the previous part's output and its skip; head. The search's stage order is the definition's
    `blocks()`: encoder blocks, then decoder blocks. A decoder stage's input widths depend on
    the previous decoder block and on the encoder block of its skip, so it is measured once per
    width pair it can meet."""
    n_enc, n_dec = len(defn.encoder), len(defn.decoder)
    hw = (input_shape[2], input_shape[3])
    encoder = [
        Part(f"encoder{i + 1}", i, ((i, 0),), partial(_encoder_part, i)) for i in range(n_enc)
    ]
    decoder = [
        Part(
            f"decoder{skip_number(defn, j)}",
            n_enc + j,
            ((n_enc + j, 0), (n_enc - 1 - j, 1)),  # previous part's output, the skip
            partial(_decoder_part, j),
        )
        for j in range(n_dec)
    ]
    return (
        Part("stem", None, (NETWORK_INPUT,), lambda d, s: stem_fragment(d, s[0])),
        *encoder,
        *decoder,
        Part("head", None, ((n_enc + n_dec, 0),), lambda d, s: head_fragment(d, s[0], hw)),
    )


def _encoder_part(stage: int, defn: FCHarDNetDef, shapes: tuple[Shape, ...]) -> nx.DiGraph:
    return encoder_fragment(defn, stage, shapes[0])


def _decoder_part(up: int, defn: FCHarDNetDef, shapes: tuple[Shape, ...]) -> nx.DiGraph:
    return decoder_fragment(defn, up, shapes[0], shapes[1])
