"""A strict structural check of an lxml tree against xsdata-generated message classes.

For a message whose XSD no package ships (pain.002), ``pyiso20022``'s classes are the schema we
have: generated from ISO's XSD by xsdata, each field carries its element name, its place in the
sequence, whether it is required or how often it may repeat, and the XSD facets of its value
(lengths, patterns, digits, enumerations). xsdata's own parser, even in its strictest mode,
checks only part of that (unknown and repeated elements, missing required ones, value types), not
element order, lengths and patterns, nor a choice with two branches. This walk checks the rest,
reading only the classes' metadata, and reports the first break with its path.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any

from lxml import etree

from .errors import BankFileRejected, RejectReason


@dataclass(frozen=True, slots=True)
class _Field:
    index: int
    target: type | None  # the class of a complex element; None for a simple value
    enum: type[Enum] | None
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    facets: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Shape:
    elements: dict[str, _Field]
    attributes: dict[str, _Field]
    text: _Field | None  # the value of a simple-content type (an amount and its Ccy)
    choice: bool
    any_content: bool  # xs:any (SupplementaryData's envelope): anything goes


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """``list[X]`` -> (X, True); ``None | X`` -> (X, False)."""
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner, False
    return hint, False


@cache
def _shape(cls: type) -> _Shape:
    hints = typing.get_type_hints(cls)
    elements: dict[str, _Field] = {}
    attributes: dict[str, _Field] = {}
    text = None
    any_content = False
    for index, field in enumerate(fields(cls)):
        meta = dict(field.metadata)
        inner, repeated = _unwrap(hints[field.name])
        if repeated:
            occurs = (meta.get("min_occurs", 0), meta.get("max_occurs"))
        else:
            occurs = (1 if meta.get("required") else 0, 1)
        spec = _Field(
            index=index,
            target=inner if isinstance(inner, type) and is_dataclass(inner) else None,
            enum=inner if isinstance(inner, type) and issubclass(inner, Enum) else None,
            min_occurs=occurs[0],
            max_occurs=occurs[1],
            facets=meta,
        )
        kind = meta.get("type")
        if kind == "Element":
            elements[meta["name"]] = spec
        elif kind == "Attribute":
            attributes[meta["name"]] = spec
        elif kind == "Wildcard":
            any_content = True
        else:
            text = spec
    return _Shape(elements, attributes, text, cls.__name__.endswith("Choice"), any_content)


def _fail(path: str, problem: str) -> typing.NoReturn:
    raise BankFileRejected(RejectReason.SCHEMA_INVALID, f"{path}: {problem}")


def _check_value(value: str | None, spec: _Field, path: str) -> None:
    text = (value or "").strip()
    facets = spec.facets
    if "min_length" in facets and len(text) < facets["min_length"]:
        _fail(path, f"shorter than {facets['min_length']}")
    if "max_length" in facets and len(text) > facets["max_length"]:
        _fail(path, f"longer than {facets['max_length']}")
    if "pattern" in facets and not re.fullmatch(facets["pattern"], text):
        _fail(path, f"{text!r} does not match {facets['pattern']}")
    if spec.enum is not None and text not in {str(m.value) for m in spec.enum}:
        _fail(path, f"{text!r} is not one of the allowed codes")
    if "total_digits" in facets or "fraction_digits" in facets:
        try:
            number = Decimal(text)
        except InvalidOperation:
            _fail(path, f"{text!r} is not a decimal number")
        exponent = number.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        if places > facets.get("fraction_digits", places):
            _fail(path, f"more than {facets['fraction_digits']} decimal places")
        if len(number.as_tuple().digits) > facets.get("total_digits", 99):
            _fail(path, f"more than {facets['total_digits']} digits")
        if "min_inclusive" in facets and number < facets["min_inclusive"]:
            _fail(path, f"below {facets['min_inclusive']}")


def check_tree(element: etree._Element, cls: type, namespace: str, path: str = "") -> None:
    """Raise ``BankFileRejected(schema_invalid)`` at the first way ``element`` breaks ``cls``."""
    shape = _shape(cls)
    path = path or etree.QName(element).localname
    if shape.any_content:
        return
    for name, value in element.attrib.items():
        attribute = shape.attributes.get(str(name))
        if attribute is None:
            _fail(path, f"unexpected attribute {name}")
        _check_value(value, attribute, f"{path}/@{name}")
    for name, attribute in shape.attributes.items():
        if attribute.min_occurs and name not in element.attrib:
            _fail(path, f"attribute {name} is missing")
    if shape.text is not None:
        if len(element):
            _fail(path, "a simple value has child elements")
        _check_value(element.text, shape.text, path)
        return
    if (element.text or "").strip():
        _fail(path, "text where only elements may be")
    _check_children(element, shape, namespace, path)


def _check_children(element: etree._Element, shape: _Shape, namespace: str, path: str) -> None:
    counts: dict[str, int] = {}
    last = -1
    for child in element:
        if not isinstance(child.tag, str):  # a comment
            continue
        if (child.tail or "").strip():
            _fail(path, "text where only elements may be")
        qname = etree.QName(child)
        child_path = f"{path}/{qname.localname}"
        spec = shape.elements.get(qname.localname)
        if qname.namespace != namespace or spec is None:
            _fail(child_path, "unexpected element")
        if spec.index < last:
            _fail(child_path, "out of order")
        last = spec.index
        counts[qname.localname] = counts.get(qname.localname, 0) + 1
        if spec.max_occurs is not None and counts[qname.localname] > spec.max_occurs:
            _fail(child_path, f"more than {spec.max_occurs}")
        if spec.target is not None:
            check_tree(child, spec.target, namespace, child_path)
        elif len(child):
            _fail(child_path, "a simple value has child elements")
        else:
            _check_value(child.text, spec, child_path)
    for name, spec in shape.elements.items():
        if counts.get(name, 0) < spec.min_occurs and not shape.choice:
            _fail(f"{path}/{name}", "missing")
    if shape.choice and sum(counts.values()) != 1:
        _fail(path, "a choice needs exactly one of its elements")
