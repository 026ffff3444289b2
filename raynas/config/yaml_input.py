"""Reading YAML that a user wrote: PyYAML's safe loader with bounds, and duplicate keys refused.

PyYAML's ``safe_load`` accepts three things a config should not have:

- a key written twice in one mapping (``search:`` twice): the last one silently wins;
- nesting thousands of levels deep (``[[[[...]]]]``): its composer recurses and dies with a RecursionError;
- aliases that expand exponentially (``b: [*a, *a, ...]``, ``c: [*b, *b, ...]``: the "billion laughs"):
  the document loads as shared objects, but every copy made of it afterwards expands it in full;
  an alias of a node inside itself makes a recursive structure no copy ends.

:func:`load_yaml` refuses each with a :class:`yaml.YAMLError` that carries the line (callers turn it into
their one-line :class:`~raynas.errors.ConfigError`). Depth and size count the document as expanded (an
alias counts as the whole node it names), so after loading, every copy of it is bounded too.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

#: nesting levels of a YAML document (a config needs about 6: tune.params.KEY.choice.[...])
MAX_YAML_DEPTH = 64
#: values (scalars, lists and mappings, with aliases expanded) of one YAML document
MAX_YAML_NODES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while composing, oversized or recursive alias expansions after
    composing, and duplicate keys while constructing."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Checked before PyYAML's recursion goes deeper, so a 5,000-deep list never reaches Python's limit.
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels; at most "
                                                f"{MAX_YAML_DEPTH} are allowed", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _ExpansionCheck().size(node, 1)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(self, node)
        return super().construct_mapping(node, deep=deep)


class _ExpansionCheck:
    """Size and height of each node with aliases expanded, each node measured once (memoised), so a
    billion-laughs document is measured in time linear in its text."""

    def __init__(self) -> None:
        self.measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, expanded height)
        self.open: set[int] = set()  # nodes being measured: meeting one again means a recursive alias

    def size(self, node: Any, depth: int) -> int:
        """The expanded size of ``node``, which sits at expanded ``depth``; raises ComposerError past a bound."""
        key = id(node)
        if key in self.measured:
            size, height = self.measured[key]
            if depth + height - 1 > MAX_YAML_DEPTH:
                raise ComposerError(None, None, f"aliases nest the document deeper than {MAX_YAML_DEPTH} levels; "
                                                f"at most {MAX_YAML_DEPTH} are allowed", node.start_mark)
            return size
        if key in self.open:
            raise ComposerError(None, None, "an alias refers to a node that contains it (a recursive structure); "
                                            "not allowed in a config", node.start_mark)
        if depth > MAX_YAML_DEPTH:
            raise ComposerError(None, None, f"aliases nest the document deeper than {MAX_YAML_DEPTH} levels; "
                                            f"at most {MAX_YAML_DEPTH} are allowed", node.start_mark)
        self.open.add(key)
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        size, height = 1, 1
        for child in children:
            size += self.size(child, depth + 1)
            height = max(height, 1 + self.measured[id(child)][1])
            if size > MAX_YAML_NODES:
                raise ComposerError(None, None, f"aliases expand the document to more than {MAX_YAML_NODES} "
                                                f"values; at most {MAX_YAML_NODES} are allowed", node.start_mark)
        self.open.discard(key)
        self.measured[key] = (size, height)
        return size


def _refuse_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> None:
    """A key written twice in one mapping is an error (keys a ``<<`` merge brings in may be overridden)."""
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = key in first_line
        except TypeError:  # an unhashable key: the constructor reports it
            continue
        if seen:
            raise ConstructorError("while reading a mapping", node.start_mark,
                                   f"duplicate key {key!r} (first at line {first_line[key] + 1}); each key may "
                                   f"appear once in a mapping", key_node.start_mark)
        first_line[key] = key_node.start_mark.line


def load_yaml(text: str) -> Any:
    """The one document in ``text``, loaded like ``yaml.safe_load`` within the bounds above.

    Raises :class:`yaml.YAMLError` (with the line in ``problem_mark`` where known) for invalid YAML,
    duplicate keys, nesting past :data:`MAX_YAML_DEPTH`, documents past :data:`MAX_YAML_NODES` values and
    values PyYAML recognises but cannot build (an integer of over 4,300 digits, the date 2020-13-45).
    """
    loader = _BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    except ValueError as exc:  # raised by a constructor (int(), datetime.date()), not a YAMLError
        detail = " ".join(str(exc).split(";")[0].split())
        raise ConstructorError(None, None, f"a value cannot be read ({detail})") from None
    finally:
        loader.dispose()
