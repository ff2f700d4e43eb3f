"""YAML in and out: safe loading that remembers where each key sits, and atomic-friendly dumping.

PyYAML's `safe_load` forgets line numbers and silently keeps the last of two duplicate keys, so we
compose the node tree ourselves with the safe loader and build plain Python values from it, recording
`(line, column)` for every key path.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from dlcli.errors import ConfigError

Path_ = tuple[str | int, ...]
Marks = dict[Path_, tuple[int, int]]


class Loader(yaml.SafeLoader):
    """The safe loader, reading `1e-3` as a float as YAML 1.2 does (YAML 1.1 makes it a string)."""


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


#: An alias bomb ("billion laughs") expands to more nodes than any real config holds; stop early.
MAX_NODES = 100_000
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def load_marked(text: str, filename: str) -> tuple[Any, Marks]:
    """Parse YAML text into plain values plus `{key path: (line, column)}`, both 1-based.

    >>> load_marked("a:\\n  b: 1\\n", "c.yaml")
    ({'a': {'b': 1}}, {(): (1, 1), ('a',): (1, 1), ('a', 'b'): (2, 3)})
    """
    loader = Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc}") from None
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
        return f"{self.filename}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(
                f"{self.where(node)}: the YAML expands to more than {MAX_NODES} values "
                "(an alias bomb?); a config never needs that many: remove the repeated aliases"
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


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def dump(data: Any) -> str:
    """YAML text for plain values, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)
