"""The kernels a fusing runtime runs a graph as: ONNX Runtime's CPU fusions, modelled on hda's
graph so that a prediction for the deployed model needs neither an export nor ORT.

ONNX Runtime (``ORT_ENABLE_ALL``, CPU execution provider) folds a BatchNorm that follows a conv
into the conv's weights, runs a residual Add and then an activation inside the conv kernel
when each is the only consumer of the value before it (its NCHWc conv takes a ``Sum`` input and
an activation), runs a BatchNorm that follows no conv as a per-channel conv with the same
activation epilogue (DenseNet's pre-activation BN-ReLU), and runs ``x * sigmoid(x)`` (SiLU, as an
ONNX file spells it) as one ``QuickGelu`` kernel. Every other op is a kernel of its own.
Which kernel runs a conv depends on its channels (``metrics.conv_paths.nchwc_path``).
`runtime_groups` applies those rules; ``tests/test_fusion.py`` checks them node for node against
the optimized graph ORT writes for several exports (``profiler.onnxrt.kernel_owners``).

ResNet-18: 20 convs, 20 BNs, 17 ReLUs and 8 adds, 65 nodes with work, run as 20 conv kernels
(each owning its BN, 8 of them their block's add, 17 a ReLU), the max pool, the global pool,
the flatten and the linear: 24 kernels.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.handlers import is_conv
from hardnet_analysis.metrics.op_kinds import BOUNDARY

#: Activations ORT's CPU kernels apply as a conv's epilogue (hda's activation kinds).
EPILOGUE_ACTIVATIONS = frozenset(
    {"relu", "relu6", "hardtanh", "leaky_relu", "sigmoid", "hardsigmoid", "hardswish", "tanh"}
)


def runtime_groups(analysis: Analysis) -> dict[str, list[str]]:
    """Per kernel, in execution order, the nodes it runs, named after its first node (a conv's
    kernel after the conv): see the module docstring. Graph boundaries belong to none."""
    graph = analysis.graph
    order = {record.name: index for index, record in enumerate(analysis.layers)}
    owned: set[str] = set()
    groups: dict[str, list[str]] = {}
    for record in analysis.layers:
        name = record.name
        attrs = graph.nodes[name]
        if name in owned or attrs["op"] in BOUNDARY:
            continue
        nodes = [name, *_epilogue(graph, name, owned, order)]
        owned.update(nodes)
        groups[name] = nodes
    return groups


def _epilogue(graph: nx.DiGraph, head: str, owned: set[str], order: dict[str, int]) -> list[str]:
    """The nodes after `head` that run in its kernel: for a conv, a BN (folded), then an add,
    then an activation; for a BN, an activation. Each must be the only consumer of the value
    before it, and of its kind at most once. An add joins the kernel only when its other input
    was computed before `head` (a kernel can read only what exists when it runs): of a
    ResNet downsample block's two convs, the one that runs second owns the add."""
    op = graph.nodes[head]["op"]
    if op == "activation":
        return _swish(graph, head)
    if not (is_conv(op) or op == "batchnorm"):
        return []
    allowed = ["batchnorm", "add", "activation"] if is_conv(op) else ["activation"]
    found: list[str] = []
    current = head
    while allowed:
        successors = list(graph.successors(current))
        if len(successors) != 1 or successors[0] in owned:
            break
        node = successors[0]
        step = _step(graph.nodes[node], allowed)
        if step is None or (step == "add" and _later_input(graph, node, current, head, order)):
            break
        allowed = allowed[allowed.index(step) + 1 :]
        found.append(node)
        current = node
    return found


def _swish(graph: nx.DiGraph, head: str) -> list[str]:
    """The mul of ``x * sigmoid(x)`` when `head` is that sigmoid and the mul its only
    consumer: ORT's QuickGelu kernel runs the two."""
    successors = list(graph.successors(head))
    if graph.nodes[head].get("kind") != "sigmoid" or len(successors) != 1:
        return []
    mul = successors[0]
    inputs = set(graph.predecessors(head))
    is_swish = graph.nodes[mul]["op"] == "mul" and set(graph.predecessors(mul)) == {head, *inputs}
    return [mul] if is_swish and len(inputs) == 1 else []


def _later_input(
    graph: nx.DiGraph, add: str, current: str, head: str, order: dict[str, int]
) -> bool:
    """Whether `add` reads a value (other than `current`'s) computed after `head`."""
    return any(order.get(p, -1) > order[head] for p in graph.predecessors(add) if p != current)


def _step(attrs: dict[str, Any], allowed: list[str]) -> str | None:
    """Which of `allowed` (in order) the node with `attrs` is, or None."""
    op = attrs["op"]
    if op not in allowed:
        return None
    if op == "activation" and attrs.get("kind") not in EPILOGUE_ACTIVATIONS:
        return None
    if op == "add" and len(attrs.get("in_shapes") or ()) != 2:
        return None
    return str(op)
