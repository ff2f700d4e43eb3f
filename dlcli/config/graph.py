"""`model.layers` as a graph: named layers, `inputs: [name, ...]` and repeated blocks, without Keras.

    layers:
      - Conv2D: {filters: 32, kernel_size: 3, padding: same, activation: relu}
      - block:                                  # a named block of layers, built `repeat` times
          name: residual
          repeat: 2
          layers:
            - Conv2D: {filters: 32, kernel_size: 3, padding: same, activation: relu}
            - Conv2D: {filters: 32, kernel_size: 3, padding: same, name: conv}
            - Add: {inputs: [input, conv]}      # `input`: what entered the block (or the list)
            - Activation: {activation: relu}

A layer without `inputs` reads the item before it (the first reads `input`); the list's last layer is
the model's output. `plan()` checks the structure once (names, cycles, unused layers, merge arity, the
widths that merging layers must share where the config states them) and lists the layers to build in
order: models/model.py only calls Keras on that list, and config/checks.py reports its problems with
every other config error, before TensorFlow starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Problem = tuple[tuple, str]

BLOCK = "block"
INPUT = "input"
#: Keras' merging layers: they take a list of tensors.
MERGE_LAYERS = ("Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract")
#: Those whose inputs must have the same shape.
ELEMENTWISE = ("Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract")
#: The argument that sets the last dimension of a layer's output, where the config states it.
WIDTH_ARGS = {
    "Dense": "units",
    "Conv1D": "filters",
    "Conv2D": "filters",
    "Conv3D": "filters",
    "SeparableConv1D": "filters",
    "SeparableConv2D": "filters",
    "Conv1DTranspose": "filters",
    "Conv2DTranspose": "filters",
    "Embedding": "output_dim",
    "LSTM": "units",
    "GRU": "units",
    "SimpleRNN": "units",
}
#: Layers whose output has their input's last dimension.
WIDTH_KEEPING = {
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "Softmax",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "UnitNormalization",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "Cropping1D",
    "Cropping2D",
    "UpSampling1D",
    "UpSampling2D",
    *ELEMENTWISE,
}
#: The most layers one block may build: a bound on what `repeat` expands (a typo of 10**9 must not
#: hang `dlcli validate`).
MAX_LAYERS = 10_000
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
BLOCK_KEYS = ("name", "repeat", "layers")
EXAMPLE = "e.g. `- block: {name: residual, repeat: 2, layers: [...]}`"


@dataclass(frozen=True)
class Node:
    """One Keras layer to build: its class, arguments (`inputs` taken out; a layer in a block named
    `<block>_<repetition>_<name>`), the nodes it reads (and their names as the config gives them),
    and the key path of its YAML item."""

    id: str
    layer: str
    kwargs: dict[str, Any]
    inputs: tuple[str, ...]
    key: tuple
    reads: tuple[str, ...]

    @property
    def merges(self) -> bool:
        return self.layer in MERGE_LAYERS


@dataclass(frozen=True)
class Plan:
    nodes: tuple[Node, ...]  # in the order to build them
    output: str  # the id of the node whose output is the model's

    @property
    def last(self) -> Node:
        return next(n for n in self.nodes if n.id == self.output)


def layer_items(layers: Any, key: tuple = ("model", "layers")) -> Iterator[tuple[tuple, str, dict]]:
    """(key path, class name, arguments) of every well-formed layer item, a block's layers included
    (once, not once per repetition)."""
    for i, item in enumerate(layers if isinstance(layers, list) else []):
        if not (isinstance(item, dict) and len(item) == 1):
            continue
        ((name, kwargs),) = item.items()
        if name == BLOCK:
            if isinstance(kwargs, dict):
                yield from layer_items(kwargs.get("layers"), (*key, i, BLOCK, "layers"))
            continue
        yield (*key, i, name), name, kwargs if isinstance(kwargs, dict) else {}


def is_graph(layers: Any) -> bool:
    """Whether the list uses blocks or `inputs` (else it is a plain stack, one layer after another)."""
    items = layers if isinstance(layers, list) else []
    blocks = any(isinstance(item, dict) and BLOCK in item for item in items)
    return blocks or any("inputs" in kwargs for _, _, kwargs in layer_items(layers))


def plan(layers: Any, key: tuple = ("model", "layers")) -> tuple[Plan | None, list[Problem]]:
    """The layers to build, in order, and every structural problem (None with problems)."""
    scope = _Scope(layers, key, outer=True)
    problems = scope.problems()
    if problems or not scope.items:
        return None, problems
    nodes: list[Node] = []
    output = scope.expand(INPUT, "", "", nodes)
    return Plan(tuple(nodes), output), []


@dataclass
class _Item:
    index: int
    layer: str  # a Keras class, or BLOCK
    kwargs: dict
    name: str | None
    reads: tuple[str, ...]  # names in this scope, INPUT, or "#<index>" for the item before

    @property
    def id(self) -> str:
        return self.name if self.name is not None else f"#{self.index}"


class _Scope:
    """One list of layers: the model's, or a block's (checked once, expanded once per repetition)."""

    def __init__(self, layers: Any, key: tuple, outer: bool) -> None:
        self.key, self.outer = key, outer
        self.items: list[_Item] = []
        self.blocks: dict[int, _Scope] = {}
        self._problems: list[Problem] = []
        for i, raw in enumerate(layers if isinstance(layers, list) else []):
            if isinstance(raw, dict) and len(raw) == 1:
                self._add(i, *next(iter(raw.items())))
            elif isinstance(raw, dict):
                self._problems.append(
                    (
                        (*key, i),
                        f"each layer is one `- ClassName: {{arguments}}` item "
                        f"(got {len(raw)} keys: {', '.join(map(str, raw))})",
                    )
                )

    def _where(self, item: _Item) -> tuple:
        return (*self.key, item.index, item.layer)

    def _add(self, i: int, layer: str, kwargs: Any) -> None:
        kwargs = kwargs if isinstance(kwargs, dict) else {}
        previous = self.items[-1].id if self.items else INPUT
        item = _Item(i, layer, kwargs, kwargs.get("name"), (previous,))
        where = self._where(item)
        if layer == BLOCK:
            self._block(item, where)
        elif "inputs" in kwargs:
            reads = kwargs["inputs"]
            if isinstance(reads, str):
                reads = [reads]
            if not (isinstance(reads, list) and reads and all(isinstance(r, str) for r in reads)):
                self._problems.append(
                    ((*where, "inputs"), "inputs is a list of layer names, e.g. [input, conv]")
                )
            else:
                item.reads = tuple(reads)
        if item.name is not None and not (isinstance(item.name, str) and NAME.match(item.name)):
            self._problems.append(
                ((*where, "name"), f"a layer's name is a word of letters, digits and _ (got {item.name!r})")
            )
            item.name = None
        self.items.append(item)

    def _block(self, item: _Item, where: tuple) -> None:
        spec = item.kwargs
        for extra in [k for k in spec if k not in BLOCK_KEYS]:
            self._problems.append(((*where, extra), f"a block has name, repeat and layers, not {extra!r}"))
        if not self.outer:
            self._problems.append((where, "blocks do not nest: write the inner block's layers out"))
        if not isinstance(spec.get("name"), str):
            self._problems.append(
                (where, f"a block needs a name, which its layers' Keras names start with ({EXAMPLE})")
            )
        repeat = spec.get("repeat", 1)
        if not (isinstance(repeat, int) and not isinstance(repeat, bool) and repeat >= 1):
            self._problems.append(
                (
                    (*where, "repeat"),
                    f"repeat is how many times the block is built, 1 or more (got {repeat!r})",
                )
            )
        elif isinstance(spec.get("layers"), list) and repeat * len(spec["layers"]) > MAX_LAYERS:
            self._problems.append(
                (
                    (*where, "repeat"),
                    f"{repeat} repetitions of {len(spec['layers'])} layers would build "
                    f"{repeat * len(spec['layers']):,} layers; a block builds at most {MAX_LAYERS:,} "
                    "(ResNet152 has 517 layers in all)",
                )
            )
        if not (isinstance(spec.get("layers"), list) and spec["layers"]):
            self._problems.append(((*where, "layers"), f"a block needs a list of layers ({EXAMPLE})"))
        else:
            self.blocks[item.index] = _Scope(spec["layers"], (*where, "layers"), outer=False)

    def problems(self) -> list[Problem]:
        problems = list(self._problems)
        for scope in self.blocks.values():
            problems += scope.problems()
        names: dict[str, _Item] = {}
        for item in self.items:
            where = self._where(item)
            if item.name == INPUT:
                problems.append(
                    ((*where, "name"), f"{INPUT!r} names what enters the list: choose another name")
                )
            elif item.name in names:
                first = ".".join(map(str, self._where(names[item.name])))
                problems.append(((*where, "name"), f"the name {item.name!r} is already given to {first}"))
            elif item.name is not None:
                names[item.name] = item
        return problems or self._edges(names)

    def _edges(self, names: dict[str, _Item]) -> list[Problem]:
        problems: list[Problem] = []
        known = [INPUT, *names]
        for item in self.items:
            where = self._where(item)
            for read in item.reads:
                if read != INPUT and not read.startswith("#") and read not in names:
                    inside = "" if self.outer else "; a block's layers read only each other and `input`"
                    problems.append(
                        (
                            (*where, "inputs"),
                            f"no layer is named {read!r} (known: {', '.join(known)}){inside}",
                        )
                    )
            problems += self._arity(item, where)
        if problems:
            return problems
        cycle = self._cycle()
        if cycle:
            path = " → ".join(i.name or f"item {i.index}" for i in cycle)
            return [
                (
                    (*self._where(cycle[0]), "inputs"),
                    f"the layers {path} read each other in a cycle: a layer can read only layers "
                    "that do not read it back",
                )
            ]
        used = {read for item in self.items for read in item.reads}
        for item in self.items[:-1]:
            if item.id not in used:
                problems.append(
                    (
                        self._where(item),
                        "nothing reads this layer's output (each layer feeds the next item unless it "
                        "names its inputs): name it in a later layer's inputs, or remove it",
                    )
                )
        return problems + self._widths()

    def _arity(self, item: _Item, where: tuple) -> list[Problem]:
        if item.layer == BLOCK:
            return []
        if item.layer in MERGE_LAYERS and len(item.reads) < 2:
            return [
                (
                    (*where, "inputs"),
                    f"{item.layer} joins two or more layers: name them, e.g. inputs: [input, conv]",
                )
            ]
        if item.layer not in MERGE_LAYERS and len(item.reads) > 1:
            return [
                (
                    (*where, "inputs"),
                    f"{item.layer} reads one input (got {len(item.reads)}: {', '.join(item.reads)}): join "
                    "them first with Concatenate or Add",
                )
            ]
        return []

    def _cycle(self) -> list[_Item]:
        by_id = {item.id: item for item in self.items}
        state: dict[str, int] = {}  # 1: on the path, 2: done

        def visit(item: _Item, path: list[_Item]) -> list[_Item]:
            state[item.id] = 1
            for read in item.reads:
                after = by_id.get(read)
                if after is None or state.get(read) == 2:
                    continue
                if state.get(read) == 1:
                    return [*path[path.index(after) :], item, after] if after in path else [item, after]
                found = visit(after, [*path, item])
                if found:
                    return found
            state[item.id] = 2
            return []

        for item in self.items:
            if item.id not in state:
                found = visit(item, [])
                if found:
                    return found
        return []

    def _order(self) -> list[_Item]:
        """Items in list order, each after the items it reads (a stable topological order)."""
        done, order, left = {INPUT}, [], list(self.items)
        while left:
            item = next(i for i in left if all(r in done for r in i.reads))
            left.remove(item)
            done.add(item.id)
            order.append(item)
        return order

    def _widths(self) -> list[Problem]:
        """Merging layers whose inputs' last dimensions are stated in the config and differ."""
        width: dict[str, int | None] = {INPUT: None}
        problems: list[Problem] = []
        for item in self._order():
            known = [(r, width.get(r)) for r in item.reads]
            width[item.id] = _width(item.layer, item.kwargs, known[0][1])
            stated = {r: w for r, w in known if w is not None}
            if item.layer in ELEMENTWISE and len(set(stated.values())) > 1:
                sizes = ", ".join(f"{_label(r)} has {w}" for r, w in stated.items())
                problems.append(
                    (
                        (*self._where(item), "inputs"),
                        f"{item.layer} needs inputs of the same shape, but their last dimensions differ "
                        f"({sizes}): give them the same units or filters, or join them with Concatenate",
                    )
                )
        return problems

    def expand(self, entry: str, ids_prefix: str, prefix: str, nodes: list[Node]) -> str:
        """Append this list's nodes (fed from node `entry`) and return the id of its last one. Ids in
        a block's repetition start `<block>/<k>/` (no name holds a /), Keras names `<block>_<k>_`."""
        ids = {INPUT: entry}
        for item in self._order():
            reads = tuple(ids[r] for r in item.reads)
            if item.layer == BLOCK:
                out = reads[0]
                name = item.kwargs["name"]
                for k in range(1, item.kwargs.get("repeat", 1) + 1):
                    out = self.blocks[item.index].expand(out, f"{name}/{k}/", f"{name}_{k}_", nodes)
                ids[item.id] = out
                continue
            kwargs = {k: v for k, v in item.kwargs.items() if k != "inputs"}
            if item.name is not None:
                kwargs["name"] = prefix + item.name
            node_id = f"{ids_prefix}{item.id}"
            shown = tuple(_label(r) for r in item.reads)
            nodes.append(Node(node_id, item.layer, kwargs, reads, self._where(item), shown))
            ids[item.id] = node_id
        return ids[self.items[-1].id]


def output_width(layers: Any) -> int | None:
    """The last dimension of a list's output where the config states it (a Dense's units), else None."""
    built, _ = plan(layers)
    if built is None:
        return None
    width: dict[str, int | None] = {INPUT: None}
    for node in built.nodes:
        width[node.id] = _width(node.layer, node.kwargs, width[node.inputs[0]])
    return width[built.output]


def _width(layer: str, kwargs: dict, first_input: int | None) -> int | None:
    if layer in WIDTH_ARGS:
        value = kwargs.get(WIDTH_ARGS[layer])
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return first_input if layer in WIDTH_KEEPING else None


def _label(read: str) -> str:
    return f"item {read[1:]}" if read.startswith("#") else read
