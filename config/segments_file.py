"""The shop file's `segments:` section (issue 21): the shop's own lapse threshold.

    segments: {lapse_days: 60}     # days without an order before a customer is lapsed; `auto` (or no
                                   # section): three times the median days between repeat orders

Read by `crm_bridge.segment_rules.parse_lapse_days`, as the console's Segments page and
`PUT /api/segments/settings` read it, so the three refuse the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from config.catalog_file import CatalogFileError, _is_null, _line, _mapping_fields
from crm_bridge.segment_rules import SegmentError, parse_lapse_days

SEGMENTS_FIELDS = ("lapse_days",)


class SegmentsFileError(CatalogFileError):
    """A `segments:` section that cannot be used."""


@dataclass(frozen=True, slots=True)
class SegmentsConfig:
    lapse_days: int | None  # None: derived from the shop's repurchase cycle


def parse_segments_node(node: yaml.Node, source: str) -> SegmentsConfig:
    if not isinstance(node, yaml.MappingNode):
        raise SegmentsFileError(source, "must be a mapping with lapse_days", _line(node), "segments")
    fields = _mapping_fields(node, source, "segments")
    for key, (key_node, _) in fields.items():
        if key not in SEGMENTS_FIELDS:
            raise SegmentsFileError(source, "unknown field (expected lapse_days)", _line(key_node), f"segments.{key}")
    value_node = fields.get("lapse_days", (None, None))[1]
    if value_node is None or _is_null(value_node):
        return SegmentsConfig(None)
    if not isinstance(value_node, yaml.ScalarNode):
        raise SegmentsFileError(source, "must be a number of days or auto", _line(value_node), "segments.lapse_days")
    try:
        return SegmentsConfig(parse_lapse_days(value_node.value, "segments.lapse_days"))
    except SegmentError as exc:
        raise SegmentsFileError(source, exc.problem, _line(value_node), exc.field) from None
