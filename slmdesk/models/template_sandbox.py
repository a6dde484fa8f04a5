"""A Jinja sandbox whose templates cannot hang the app or exhaust its memory.

Chat templates come from model files, so they are hostile input. Jinja's
`ImmutableSandboxedEnvironment` already keeps them away from Python internals and files, but not
from resources: nested loops run for hours, ``'x' * 10**10`` or ``tojson(indent=10**9)`` ask for
gigabytes, a string that doubles itself forty times does too. Worse, Jinja evaluates constant
expressions while *compiling* (constant folding), so the bomb goes off before rendering starts.

`BoundedEnvironment` closes those doors:

- nothing is evaluated at compile time: the optimizer is off, every binary operator is
  intercepted (the sandbox then refuses to fold it) and every filter takes the context (Jinja
  never folds those);
- every render runs against a `Budget`: a wall-clock deadline checked on every loop step,
  call, attribute or item lookup, operator and filter, and a cap on the bytes the template
  creates (output pieces, concatenations, operator and call results). Operations that could
  allocate a lot in one step (``*``, ``%``, ``str.center``, ``replace``, ``join``, ``indent``,
  ``tojson``...) are sized *before* they run;
- templates longer than `MAX_TEMPLATE_CHARS` are refused, which bounds compile time (Jinja's
  compiler cannot be interrupted).

When a limit is hit the render raises `TemplateLimitError`; the caller falls back to a format
written in Python. Outside a render (e.g. at compile time) every guard refuses, so Jinja leaves
the expression to run time.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, pass_context
from jinja2.visitor import NodeTransformer

# Compile time grows with a template's length (up to ~30 ms a kilobyte for the densest ones, all
# of it before any deadline can apply). Published templates stay well below this: the largest in
# llama.cpp's collection of recent models (models/templates) is about 15 KB.
MAX_TEMPLATE_CHARS = 32 * 1024
# Integers stay far below this many bits (operations on them stay instant).
_MAX_INT_BITS = 1 << 16
# The most items a list, tuple, dict or set built by a template may hold.
MAX_ITEMS = 1_000_000
# The widest indent, field width or padding a template may ask for.
_MAX_WIDTH = 10_000
# Bytes assumed for a value whose size is not measured (a number, a macro, an undefined...).
_SMALL = 64
# Bytes an item of a new list of strings costs at most (the reference plus a small string).
_ITEM_BYTES = 80

_EMIT = "slmdesk:emit"
_LOOP = "slmdesk:loop"
_CONCAT = "slmdesk:concat"


class TemplateLimitError(Exception):
    """A template exceeded its time or memory budget (or ran a guarded operation outside one)."""


@dataclass(frozen=True)
class Limits:
    """How much one render may take.

    Attributes:
        seconds: wall-clock time for the render.
        max_bytes: bytes the template may create in total (output, strings, lists).
    """

    seconds: float = 1.0
    max_bytes: int = 32 * 1024 * 1024


class Budget:
    """What is left of a render's `Limits`; the guards draw on it."""

    def __init__(self, limits: Limits, deadline: float | None = None) -> None:
        self.limits = limits
        self.deadline = deadline if deadline is not None else time.monotonic() + limits.seconds
        self.spent = 0

    def tick(self) -> None:
        """Refuse to go on once the deadline has passed."""
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"it ran longer than {self.limits.seconds:g} s")

    def allow(self, nbytes: int) -> None:
        """Refuse an operation that would create ``nbytes`` more than the budget holds."""
        if self.spent + nbytes > self.limits.max_bytes:
            raise TemplateLimitError(
                f"it tried to use more than {self.limits.max_bytes // (1024 * 1024)} MB"
            )

    def spend(self, value: Any) -> Any:
        """Count a value just created (strings, lists, tuples, dicts) and return it."""
        if isinstance(value, str | bytes | list | tuple | dict | set):
            if not isinstance(value, str | bytes) and len(value) > MAX_ITEMS:
                # Sorting or comparing such a collection is one long step no deadline can cut.
                raise TemplateLimitError(f"it built a collection of more than {MAX_ITEMS:,} items")
            self.allow(sys.getsizeof(value))
            self.spent += sys.getsizeof(value)
        return value


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "slmdesk_template_budget", default=None
)


def _budget() -> Budget:
    budget = _CURRENT.get()
    if budget is None:  # e.g. Jinja folding a constant at compile time: leave it to run time
        raise TemplateLimitError("guarded operation outside a bounded render")
    budget.tick()
    return budget


# -- sizes ----------------------------------------------------------------------------------------


def _char_bytes(text: str | bytes) -> int:
    """Bytes per character of a string (CPython stores ASCII in 1, the widest text in 4)."""
    return 1 if isinstance(text, bytes) or text.isascii() else 4


def _text_size(value: Any, budget: Budget) -> int:
    """Bytes of ``str(value)``, measured without building it; refuses once it passes the budget.

    Containers are walked item by item (a list holding the same big string 100,000 times
    prints 100,000 copies), so the walk stops as soon as the size is known to be too big.
    """
    room = budget.limits.max_bytes - budget.spent
    total = 0
    stack: list[Any] = [value]
    steps = 0
    while stack:
        steps += 1
        if steps % 4096 == 0:
            budget.tick()
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) * _char_bytes(item) + 4
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= room:
                stack.extend(item)
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total <= room:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, Namespace):
            total += 16
            attrs = object.__getattribute__(item, "_Namespace__attrs")
            stack.append(attrs)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        else:
            total += _SMALL
        if total > room:
            budget.allow(total)
    return total


def _bounded_str(value: Any, budget: Budget) -> str:
    if type(value) is str:
        return value
    if not isinstance(value, str):
        budget.allow(_text_size(value, budget))
    return str(value)


def _materialize(value: Any, budget: Budget) -> Any:
    """A lazy iterable (``map``, ``select``...) as a list, built under the budget."""
    if isinstance(value, Iterator):
        items: list[Any] = []
        for item in value:
            if len(items) % 256 == 0:
                budget.tick()
                budget.allow(len(items) * 8 + 64)
            items.append(item)
        return items
    return value


# Filters that turn their value into text first and can grow it (or split it into many pieces).
_TEXT_FILTERS = frozenset(
    {"center", "indent", "format", "replace", "wordwrap", "wordcount", "urlize", "striptags"}
)

# -- prechecks: size an operation before it allocates ---------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_width(width: Any) -> int:
    if isinstance(width, int) and width > _MAX_WIDTH:
        raise TemplateLimitError(f"it asked for a width of {width:,} characters")
    return width if isinstance(width, int) else 0


def _check_percent_format(template: str, args: Any, budget: Budget) -> None:
    """``'%5d' % x``: refuse huge or ``*`` widths, then size the arguments."""
    padding = 0
    for width, precision in _PERCENT_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                raise TemplateLimitError("it used a '*' width in a % format")
            if number:
                padding += _check_width(int(number))
    budget.allow(len(template) + padding + _text_size(args, budget))


def _check_brace_format(template: str, args: Any, kwargs: Any, budget: Budget) -> None:
    """``'{:>9}'.format(x)``: refuse huge or nested widths, then size the arguments."""
    padding = 0
    for _text, _field, spec, _conversion in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("it used a computed width in a format string")
        for number in re.findall(r"\d+", spec):
            padding += _check_width(int(number))
    budget.allow(len(template) + padding + _text_size([args, kwargs], budget))


def _check_replace(text: Any, old: Any, new: Any, count: Any, budget: Budget) -> None:
    if not isinstance(text, str | bytes) or not isinstance(old, str | bytes):
        return
    if not isinstance(new, str | bytes):
        new = str(new)
    hits = len(text) + 1 if not old else text.count(old)  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    growth = max(0, len(new) - len(old)) * hits
    budget.allow((len(text) + growth) * max(_char_bytes(text), _char_bytes(new)))


def _check_join(separator: Any, items: list[Any], budget: Budget) -> None:
    sep = len(separator) * _char_bytes(separator) if isinstance(separator, str) else 0
    budget.allow(sep * max(0, len(items) - 1) + _text_size(items, budget))


def _check_split(text: Any, separator: Any, budget: Budget) -> None:
    if not isinstance(text, str | bytes):
        return
    if isinstance(separator, str | bytes) and separator:
        parts = text.count(separator) + 1  # type: ignore[arg-type]
    else:
        parts = len(text) // 2 + 1
    budget.allow(parts * _ITEM_BYTES + len(text) * _char_bytes(text))


def _check_method(
    method: Any, args: tuple[Any, ...], kwargs: dict[str, Any], budget: Budget
) -> Any:
    """Size a call to a Python method that can grow its result far beyond its inputs.

    Returns the arguments to call with (a lazy ``join`` argument becomes a list).
    """
    name = getattr(method, "__name__", "")
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes | int):
        return args
    if isinstance(owner, int):
        if name == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            _check_width(length)
        return args
    size = len(owner) * _char_bytes(owner)
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else 0
        budget.allow(max(size, _check_width(width) * _char_bytes(owner)))
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count(b"\t") if isinstance(owner, bytes) else owner.count("\t")
        budget.allow(size + tabs * _check_width(tab) * 4)
    elif name == "replace" and len(args) >= 2:
        _check_replace(
            owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count"), budget
        )
    elif name == "join" and args:
        items = list(_materialize(iter(args[0]), budget))
        _check_join(owner, items, budget)
        return (items, *args[1:])
    elif name in ("split", "rsplit"):
        _check_split(owner, args[0] if args else kwargs.get("sep"), budget)
    elif name == "splitlines":
        _check_split(owner, "\n", budget)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        budget.allow(size * max(1, longest) * 4)
    elif name == "hex":
        budget.allow(size * 3)
    elif name == "encode":
        budget.allow(len(owner) * 4)
    return args


# -- the environment ------------------------------------------------------------------------------


class _GenerationTag(Extension):
    """``{% generation %}...{% endgeneration %}``: marks assistant text for training; a no-op here."""

    tags = {"generation"}  # noqa: RUF012 - jinja2 reads this class attribute

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body).set_lineno(lineno)


class _Guards(NodeTransformer):
    """Rewrites a parsed template so loops, output and ``~`` go through the budget."""

    @staticmethod
    def _guard(node: nodes.Node, name: str) -> nodes.Filter:
        return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._guard(node.iter, _LOOP)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [self._guard(child, _EMIT) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._guard(nodes.List(list(node.nodes), lineno=node.lineno), _CONCAT)


class _TickingIterable:
    """A loop's iterable that checks the deadline on every step (and keeps ``len``)."""

    def __init__(self, inner: Iterable[Any], budget: Budget) -> None:
        self._inner = inner
        self._budget = budget

    def __len__(self) -> int:
        return len(self._inner)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        tick = self._budget.tick
        for item in self._inner:
            tick()
            yield item


@pass_context
def _guard_loop(_context: Any, iterable: Any) -> Any:
    budget = _budget()
    if isinstance(iterable, jinja2.Undefined) or not isinstance(iterable, Iterable):
        return iterable  # let Jinja report it as it always does
    return _TickingIterable(iterable, budget)


@pass_context
def _guard_emit(_context: Any, value: Any) -> str:
    budget = _budget()
    text = _bounded_str(value, budget)
    budget.spend(text)
    return text


@pass_context
def _guard_concat(_context: Any, parts: list[Any]) -> str:
    budget = _budget()
    budget.allow(_text_size(parts, budget))
    return budget.spend("".join(str(part) for part in parts))  # type: ignore[no-any-return]


def _tojson(
    value: Any,
    indent: int | str | None = None,
    separators: Any = None,
    sort_keys: bool = False,
    ensure_ascii: bool = False,
) -> str:
    """Hugging Face's ``tojson`` (no HTML escaping, non-ASCII kept), written under the budget."""
    budget = _budget()
    if isinstance(indent, int):
        _check_width(indent)
    elif isinstance(indent, str):
        _check_width(len(indent))
    encoder = json.JSONEncoder(
        indent=indent, separators=separators, sort_keys=sort_keys, ensure_ascii=ensure_ascii
    )
    pieces: list[str] = []
    room = budget.limits.max_bytes - budget.spent
    written = 0
    for chunk in encoder.iterencode(value):
        written += len(chunk) * _char_bytes(chunk)
        if written > room:
            budget.allow(written)
        if len(pieces) % 256 == 0:
            budget.tick()
        pieces.append(chunk)
    return budget.spend("".join(pieces))  # type: ignore[no-any-return]


def _precheck_filter(
    name: str, budget: Budget, value: Any, args: tuple[Any, ...], kwargs: Any
) -> None:
    """Size the filters whose result can be far bigger than their input."""

    def arg(position: int, key: str, default: Any) -> Any:
        return args[position] if len(args) > position else kwargs.get(key, default)

    if name in _TEXT_FILTERS:
        text = _bounded_str(value, budget)  # these filters work on the value's text
        if name == "center":
            budget.allow(_check_width(arg(0, "width", 80)) * 4 + len(text) * 4)
        elif name == "indent":
            width = arg(0, "width", 4)
            step = _check_width(len(width) if isinstance(width, str) else width)
            budget.allow((len(text) + (text.count("\n") + 1) * step) * 4)
        elif name == "format":
            _check_percent_format(text, [args, kwargs], budget)
        elif name == "replace":
            _check_replace(
                text, arg(0, "old", ""), arg(1, "new", ""), arg(2, "count", None), budget
            )
        else:
            _check_split(text, None, budget)
    elif name == "list" and isinstance(value, str):
        _check_split(value, None, budget)
    elif name == "join":
        separator = arg(0, "d", "")
        if isinstance(value, str):
            value = list(value)  # joins its characters
        _check_join(separator, list(value) if isinstance(value, Iterable) else [value], budget)
    elif name in ("string", "pprint", "xmlattr", "urlencode"):
        _check_join("", [value], budget)
    elif name == "batch":
        budget.allow(_check_width(arg(0, "linecount", 1)) * 8)
    elif name == "slice":
        budget.allow(_check_width(arg(0, "slices", 1)) * _SMALL)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` run under the budget: sized first, its lazy input materialized, its result counted."""
    pass_arg = jinja2.utils._PassArg.from_obj(func)

    @pass_context
    def guarded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        value = _materialize(value, budget)
        _precheck_filter(name, budget, value, args, kwargs)
        if name == "sum" and not _numeric_start(args, kwargs):
            result = _guarded_sum(context, value, args, kwargs, budget)
        elif pass_arg is jinja2.utils._PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is jinja2.utils._PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is jinja2.utils._PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return budget.spend(result)

    guarded.__name__ = f"guarded_{name}"
    return guarded


def _numeric_start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``sum``'s ``start`` (its second argument) is a number, the usual case."""
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    return isinstance(start, int | float)


def _guarded_sum(
    context: Any, items: Any, args: tuple[Any, ...], kwargs: dict[str, Any], budget: Budget
) -> Any:
    """``sum`` of lists or strings, one guarded ``+`` at a time (the built-in is quadratic)."""
    attribute = args[0] if args else kwargs.get("attribute")
    total = args[1] if len(args) > 1 else kwargs.get("start", 0)
    env: BoundedEnvironment = context.environment
    getter = jinja2.filters.make_attrgetter(env, attribute) if attribute is not None else None
    for item in items:
        total = env.call_binop(context, "+", total, getter(item) if getter else item)
    return total


def _strftime_now(fmt: str) -> str:
    """Hugging Face's ``strftime_now`` helper (templates that print today's date)."""
    fmt = str(fmt)
    if len(fmt) > 1000:
        raise TemplateLimitError("it asked for a date format of more than 1,000 characters")
    return _dt.datetime.now().strftime(fmt)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus time and memory budgets and no compile-time evaluation."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self) -> None:
        super().__init__(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[loopcontrols, _GenerationTag],
            autoescape=False,
            loader=None,
            optimized=False,
        )
        self.globals.pop("lipsum", None)  # writes unbounded lorem ipsum; no chat template uses it
        self.globals["strftime_now"] = _strftime_now
        filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        filters["tojson"] = _guard_filter("tojson", _tojson)
        filters[_EMIT] = _guard_emit
        filters[_LOOP] = _guard_loop
        filters[_CONCAT] = _guard_concat
        self.filters = filters

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse as Jinja does, then route loops, output and ``~`` through the guards."""
        tree = super()._parse(source, name, filename)
        return _Guards().visit(tree)  # type: ignore[no-any-return]

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Every arithmetic operator: sized before it runs, its result counted."""
        budget = _budget()
        if operator == "*":
            _check_multiply(left, right, budget)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            if isinstance(left, str | bytes | list | tuple) and isinstance(right, type(left)):
                budget.allow(sys.getsizeof(left) + sys.getsizeof(right))
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, right, budget)
        result = self.binop_table[operator](left, right)
        if isinstance(result, int) and result.bit_length() > _MAX_INT_BITS:
            raise TemplateLimitError("it computed a number too large")
        return budget.spend(result)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call (macros, ``loop()``, methods): on the clock, growing methods sized first."""
        budget = _budget()
        args = _check_method(__obj, args, kwargs, budget)
        return budget.spend(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Attribute lookups are on the clock (a loop body may do nothing else)."""
        _budget()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Item lookups are on the clock; a slice is a new value and is counted."""
        budget = _budget()
        value = super().getitem(obj, argument)
        return budget.spend(value) if isinstance(argument, slice) else value

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``: the sandbox's safe formatter, with widths and arguments sized first."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            budget = _budget()
            _check_brace_format(template, args, kwargs, budget)
            return budget.spend(wrapper(*args, **kwargs))  # type: ignore[no-any-return]

        return checked


def _check_multiply(left: Any, right: Any, budget: Budget) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise TemplateLimitError("it computed a number too large")
        return
    sequence, count = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(count, int) and isinstance(sequence, str | bytes | list | tuple):
        budget.allow(max(0, count) * (sys.getsizeof(sequence)))


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)):
        return
    if exponent > 0 and abs(base) > 1 and base.bit_length() * exponent > _MAX_INT_BITS:
        raise TemplateLimitError("it computed a number too large")


_ENV = BoundedEnvironment()


class BoundedTemplate:
    """A compiled chat template that renders only under a `Budget`."""

    def __init__(self, source: str) -> None:
        """Compile ``source``.

        Raises:
            TemplateLimitError: the template is longer than `MAX_TEMPLATE_CHARS`.
            jinja2.TemplateSyntaxError: it is not valid Jinja.
        """
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateLimitError(
                f"it is {len(source):,} characters long (at most {MAX_TEMPLATE_CHARS:,} are "
                "accepted)"
            )
        self._template = _ENV.from_string(source)

    def render(self, context: Mapping[str, Any], budget: Budget) -> str:
        """Render with ``context`` under ``budget``.

        Raises:
            TemplateLimitError: the template ran out of time or memory.
            Exception: whatever the template raises (``raise_exception``, a type error...).
        """
        token = _CURRENT.set(budget)
        try:
            return self._template.render(context)
        finally:
            _CURRENT.reset(token)
