"""GeoReport documents as the spec writes them: XML built with ElementTree (escaped, never
concatenated) and JSON by the Spark convention (a list element becomes an array of its items,
the document's root disappears).

A document is plain data: a dict (fields in the spec's order) or a list of dicts, whose values
are str, int, float, bool, None or nested lists. A list's items are named after the list
(`ITEM_TAGS`): <services><service>…, <service_requests><request>…, <errors><error>…"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Literal

Format = Literal["xml", "json"]

MEDIA_TYPES: dict[Format, str] = {
    "xml": "text/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}

# The element of each list's items.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}

# Characters XML 1.0 cannot carry at all (ElementTree would write them and break the document).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str | None:
    """A scalar as element text: booleans as the spec's true/false, None as an empty element."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("\ufffd", str(value))


def _fill(element: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), key, child)
    elif isinstance(value, list):
        tag = ITEM_TAGS[name]
        for item in value:
            _fill(ET.SubElement(element, tag), tag, item)
    else:
        element.text = xml_text(value)


# The spec's declaration, as its examples write it (ElementTree's own uses single quotes).
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def to_xml(root: str, document: Any) -> bytes:
    """The document under `root`, after the XML declaration naming UTF-8 (the spec asks it)."""
    element = ET.Element(root)
    _fill(element, root, document)
    return DECLARATION + ET.tostring(element, encoding="unicode").encode("utf-8")


def to_json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render(fmt: Format, root: str, document: Any) -> bytes:
    return to_xml(root, document) if fmt == "xml" else to_json(document)
