"""YAML in and out: safe loading that remembers where each key sits, and atomic-friendly dumping.

PyYAML's `safe_load` forgets line numbers and silently keeps the last of two duplicate keys, so we
compose the node tree ourselves with the safe loader and build plain Python values from it, recording
`(line, column)` for every key path.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from dlcli.utils.errors import ConfigError

Path_ = tuple[str | int, ...]
Marks = dict[Path_, tuple[int, int]]


#: A config is a few kilobytes; these bounds refuse a hostile or mistaken file before it costs time.
MAX_BYTES = 500_000
MAX_DEPTH = 64
#: An alias bomb ("billion laughs") expands to more values than any real config holds; stop early.
MAX_NODES = 20_000


class _TooLarge(Exception):
    def __init__(self, problem: str, mark):
        super().__init__(problem)
        self.problem, self.mark = problem, mark


class Loader(yaml.SafeLoader):
    """The safe loader, reading `1e-3` as a float as YAML 1.2 does (YAML 1.1 makes it a string),
    that stops composing at MAX_DEPTH levels of nesting or MAX_NODES values: PyYAML's composer
    recurses once per level and keeps every node, so a 20,000-deep file would exhaust the stack and a
    400,000-key mapping would take seconds and hundreds of MB before anything is checked."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = self._nodes = 0

    def compose_node(self, parent, index):
        self._nodes += 1
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooLarge(
                    f"nested more than {MAX_DEPTH} levels deep; a config needs a handful: "
                    "check the indentation or brackets",
                    self.peek_event().start_mark,
                )
            if self._nodes > MAX_NODES:
                raise _TooLarge(
                    f"more than {MAX_NODES} values; a config needs a few dozen: is this the right file?",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load(text: str):
    """`yaml.safe_load` with the float rule above; used for `-o` values too."""
    loader = Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def load_marked(text: str, filename: str) -> tuple[Any, Marks]:
    """Parse YAML text into plain values plus `{key path: (line, column)}`, both 1-based.

    >>> load_marked("a:\\n  b: 1\\n", "c.yaml")
    ({'a': {'b': 1}}, {(): (1, 1), ('a',): (1, 1), ('a', 'b'): (2, 3)})
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"{filename}: {len(text):,} characters; a config is a few kilobytes (expected under "
            f"{MAX_BYTES:,}): is this the right file?"
        )
    loader = Loader(text)
    try:
        node = loader.get_single_node()
    except _TooLarge as exc:
        loader.dispose()
        raise ConfigError(f"{where(filename, exc.mark)}: {exc.problem}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(f"{where(filename, mark)}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{filename}: not valid YAML: {exc}") from None
    marks: Marks = {}
    if node is None:
        loader.dispose()
        return None, marks
    builder = _Builder(loader, filename, marks)
    try:
        return builder.build(node, ()), marks
    finally:
        loader.dispose()


class _Builder:
    def __init__(self, loader: Loader, filename: str, marks: Marks):
        self.loader, self.filename, self.marks, self.count = loader, filename, marks, 0

    def where(self, node: yaml.Node) -> str:
        return where(self.filename, node.start_mark)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(
                f"{self.where(node)}: the YAML expands to more than {MAX_NODES} values through its "
                "aliases (an alias bomb?); a config never needs that many: remove the repeated aliases"
            )
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            raise self._tag_error(node, path)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise self._tag_error(node, path) from None

    def _tag_error(self, node: yaml.Node, path: Path_) -> ConfigError:
        return ConfigError(
            f"{self.where(node)}: {_dotted(path)}: the tag {node.tag!r} is not allowed (got a YAML "
            "tag that would build a Python object; expected plain values: strings, numbers, "
            "booleans, lists and mappings): remove the tag"
        )

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict:
        self.loader.flatten_mapping(node)  # resolves `<<: *defaults` merge keys
        out: dict = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ConfigError(f"{self.where(key_node)}: {_dotted(path)}: keys must be plain strings")
            key = str(key)
            if key in out:
                first = self.marks[(*path, key)]
                raise ConfigError(
                    f"{self.where(key_node)}: {_dotted((*path, key))}: duplicate key (first defined "
                    f"at line {first[0]}); YAML keeps only one of them: delete one"
                )
            self.marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, (*path, key))
        return out


def where(filename: str, mark=None, line: int | None = None, column: int | None = None) -> str:
    """`FILE:LINE:COL`, 1-based, from a YAML mark (0-based) or a line and column: the one formatter."""
    if mark is not None:
        line, column = mark.line + 1, mark.column + 1
    if line is None:
        return filename
    return f"{filename}:{line}:{column}" if column else f"{filename}:{line}"


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def dump(data: Any) -> str:
    """YAML text for plain values, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)
