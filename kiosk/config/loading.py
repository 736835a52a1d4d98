"""Loading a config: the YAML is composed into nodes first, so that every error names the YAML path
and line, a duplicated key is an error, an unknown key gets a did-you-mean hint, and fields
declared as strings (ids, labels, the camera source) keep the text as written even where YAML 1.1
would read a boolean or a number (``store_id: no``, ``device_id: 0012``). Bounded: size, values
after aliases, depth, and no alias that contains itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kiosk.config.schema import KioskConfig


class ConfigError(ValueError):
    """An invalid configuration; the message lists every problem by YAML path (and line)."""


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model that holds the key at ``loc`` (for did-you-mean hints)."""
    model: type[BaseModel] | None = KioskConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _submodel(field.annotation) if field else None
    return model


def _submodel(annotation: Any) -> type[BaseModel] | None:
    import typing

    for ann in (annotation, *typing.get_args(annotation)):
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            return ann
    return None


def _is_text(annotation: Any) -> bool:
    import typing

    args = typing.get_args(annotation)
    return annotation is str or (str in args and all(a in (str, type(None)) for a in args))


def _message(e: Any) -> str:  # a pydantic ErrorDetails
    import difflib

    msg: str = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if e["type"] == "extra_forbidden":
        model = _model_at(e["loc"])
        key = str(e["loc"][-1])
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(known)}"
        return f"unknown key {key!r}; {hint}"
    if e["type"] == "missing":
        return "missing"
    value = e.get("input")
    if isinstance(value, (str, int, float, bool)) and not isinstance(e["loc"][-1], int) and len(repr(value)) < 60:
        if e["type"] not in ("value_error", "assertion_error"):
            msg += f" (got {value!r})"
    return msg


def parse_config(
    data: object, source: str = "<config>", lines: dict[tuple[Any, ...], int] | None = None
) -> KioskConfig:
    """Validate already-parsed data; ``lines`` maps YAML paths (tuples) to line numbers for the messages."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections (vision:, camera:, ...), got {type(data).__name__}"
        )
    try:
        return KioskConfig.model_validate(data or {})
    except ValidationError as exc:
        out = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            line = None
            for n in range(len(loc), -1, -1):  # the nearest enclosing key that has a line
                if lines and loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            where = f"{source}:{line}" if line else source
            out.append(f"{where}: {_path(loc)}: {_message(e)}")
        raise ConfigError("\n".join(out)) from None


_PLAIN_TAGS = frozenset({"map", "seq", "str", "int", "float", "bool", "null", "timestamp"})


MAX_CONFIG_BYTES = 1 << 20  # a kiosk config is a few kilobytes
MAX_CONFIG_NODES = 20_000  # values after aliases are expanded (a "billion laughs" file expands to 10^9)
MAX_CONFIG_DEPTH = 32


class _Reader:
    """YAML nodes to plain data, keeping string fields as written and recording each key's line.
    Bounded: at most MAX_CONFIG_NODES values once aliases are expanded, MAX_CONFIG_DEPTH levels,
    and no alias that contains itself."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[tuple[Any, ...], int] = {}
        self._nodes = 0
        self._open: set[int] = set()  # the nodes being read (an alias back to one of them is a cycle)

    def read(self, node: yaml.Node, model: type[BaseModel] | None, loc: tuple[Any, ...]) -> Any:
        where = f"{self.source}:{node.start_mark.line + 1}: {_path(loc)}"
        self._nodes += 1
        if self._nodes > MAX_CONFIG_NODES:
            raise ConfigError(
                f"{where}: the config expands to over {MAX_CONFIG_NODES} values (aliases repeating "
                "aliases?); write the values out, a kiosk config needs a few hundred"
            )
        if len(loc) > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{where}: nested over {MAX_CONFIG_DEPTH} levels deep; a kiosk config needs a few")
        if id(node) in self._open:
            raise ConfigError(f"{where}: an alias (*name) refers to a value that contains it; write the value out")
        self._open.add(id(node))
        try:
            return self._read(node, model, loc)
        finally:
            self._open.discard(id(node))

    def _read(self, node: yaml.Node, model: type[BaseModel] | None, loc: tuple[Any, ...]) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if node.tag.removeprefix("tag:yaml.org,2002:") not in _PLAIN_TAGS:
            raise ConfigError(
                f"{self.source}:{node.start_mark.line + 1}: {_path(loc)}: not valid YAML for a config: "
                f"the tag {node.tag} is not allowed (plain values, lists and mappings only)"
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = self._plain(key_node)
                if not isinstance(key, str):
                    key = str(key)
                if key in seen:
                    raise ConfigError(
                        f"{self.source}:{key_node.start_mark.line + 1}: {_path(loc + (key,))}: "
                        f"the key appears twice (first on line {seen[key]}); keep one"
                    )
                seen[key] = key_node.start_mark.line + 1
                field = model.model_fields.get(key) if model else None
                self.lines[loc + (key,)] = key_node.start_mark.line + 1
                if field is not None and _is_text(field.annotation) and isinstance(value_node, yaml.ScalarNode):
                    out[key] = None if value_node.tag.endswith(":null") and not value_node.style else value_node.value
                else:
                    out[key] = self.read(value_node, _submodel(field.annotation) if field else None, loc + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, model, loc + (i,)) for i, item in enumerate(node.value)]
        return self._plain(node)

    @staticmethod
    def _plain(node: yaml.Node) -> Any:
        # the safe loader's own constructor on the node itself (serialising and parsing it again cost
        # about 100 us a value: two seconds for a file at the node bound)
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def load_config(path: Path) -> KioskConfig:
    if Path(path).is_dir():
        raise ConfigError(f"{path}: is a directory; give the YAML file, for example {Path(path) / 'kiosk.yaml'}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str = "<config>") -> KioskConfig:
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: the file is over {MAX_CONFIG_BYTES // 1024} KiB; a kiosk config is a few "
            "kilobytes (is it the right file?)"
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem} (check indentation, colons and quotes)") from None
    if node is None:
        return parse_config(None, source)
    reader = _Reader(source)
    try:
        data = reader.read(node, KioskConfig, ())
    except yaml.YAMLError as exc:  # an unknown tag, for example
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    return parse_config(data, source, reader.lines)
