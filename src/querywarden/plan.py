"""The plan model: the stable part of `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` output.

PostgreSQL's JSON plan mixes deterministic facts (node types, relations, indexes, costs, rows, total
blocks touched) with volatile ones (per-node times, the hit/read split of a cold cache). Only the
deterministic facts are kept, so a baseline written from a plan changes only when the plan does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# EXPLAIN keys shown to people as the node's detail; they contain aliases, so they never decide verdicts.
_DETAIL_KEYS = (
    "Index Cond",
    "Recheck Cond",
    "Hash Cond",
    "Merge Cond",
    "Join Filter",
    "Filter",
    "Sort Key",
    "Group Key",
)


@dataclass(frozen=True)
class Buffers:
    """Blocks touched: the deterministic measure of how much work a statement does."""

    shared: int = 0
    temp_read: int = 0
    temp_written: int = 0
    local: int = 0

    @property
    def total(self) -> int:
        return self.shared + self.temp_read + self.temp_written + self.local

    @property
    def temp(self) -> int:
        return self.temp_read + self.temp_written

    def to_dict(self) -> dict[str, int]:
        return {
            "local": self.local,
            "shared": self.shared,
            "temp_read": self.temp_read,
            "temp_written": self.temp_written,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Buffers:
        return cls(
            shared=int(data["shared"]),
            temp_read=int(data["temp_read"]),
            temp_written=int(data["temp_written"]),
            local=int(data.get("local", 0)),
        )

    @classmethod
    def from_explain_node(cls, node: Mapping[str, Any]) -> Buffers:
        return cls(
            shared=int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0)),
            temp_read=int(node.get("Temp Read Blocks", 0)),
            temp_written=int(node.get("Temp Written Blocks", 0)),
            local=int(node.get("Local Hit Blocks", 0)) + int(node.get("Local Read Blocks", 0)),
        )


@dataclass(frozen=True)
class PlanNode:
    """One plan node with its deterministic facts; `children` keeps EXPLAIN's order."""

    node_type: str
    relation: str | None = None
    index: str | None = None
    join_type: str | None = None
    strategy: str | None = None
    parent_relationship: str | None = None
    total_cost: float = 0.0
    plan_rows: float = 0.0
    actual_rows: float = 0.0
    actual_loops: int = 1
    buffers: Buffers = field(default_factory=Buffers)
    spill: str | None = None
    detail: tuple[tuple[str, str], ...] = ()
    children: tuple[PlanNode, ...] = ()

    @property
    def label(self) -> str:
        """A one-line description such as 'Index Scan using ix on accounts' or 'Hash Join (Left)'."""
        text = self.node_type
        if self.node_type == "Aggregate" and self.strategy:
            text = f"Aggregate ({self.strategy})"
        if self.join_type and self.join_type != "Inner":
            text = f"{text} ({self.join_type})"
        if self.index:
            text = f"{text} using {self.index}"
        if self.relation:
            text = f"{text} on {self.relation}"
        return text

    def walk(self, depth: int = 0) -> Iterator[tuple[int, PlanNode]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def signature(self) -> tuple[str, ...]:
        """The plan's shape: node labels in tree order, indented by depth; no numbers."""
        return tuple("  " * depth + node.label for depth, node in self.walk())

    def scans(self) -> dict[str, set[str]]:
        """Per relation, how it is read: {'accounts': {'Index Scan using ix'}}."""
        found: dict[str, set[str]] = {}
        for _, node in self.walk():
            if node.relation:
                how = node.node_type + (f" using {node.index}" if node.index else "")
                found.setdefault(node.relation, set()).add(how)
        return found

    def spills(self) -> tuple[str, ...]:
        """Descriptions of nodes that spilled to disk (external sorts, multi-batch hashes)."""
        return tuple(f"{node.label}: {node.spill}" for _, node in self.walk() if node.spill)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "actual_loops": self.actual_loops,
            "actual_rows": self.actual_rows,
            "buffers": self.buffers.to_dict(),
            "node_type": self.node_type,
            "plan_rows": self.plan_rows,
            "total_cost": self.total_cost,
        }
        for key in ("relation", "index", "join_type", "strategy", "parent_relationship", "spill"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.detail:
            data["detail"] = {key: value for key, value in self.detail}
        if self.children:
            data["children"] = [child.to_dict() for child in self.children]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanNode:
        return cls(
            node_type=str(data["node_type"]),
            relation=data.get("relation"),
            index=data.get("index"),
            join_type=data.get("join_type"),
            strategy=data.get("strategy"),
            parent_relationship=data.get("parent_relationship"),
            total_cost=float(data["total_cost"]),
            plan_rows=float(data["plan_rows"]),
            actual_rows=float(data["actual_rows"]),
            actual_loops=int(data["actual_loops"]),
            buffers=Buffers.from_dict(data["buffers"]),
            spill=data.get("spill"),
            detail=tuple((str(k), str(v)) for k, v in dict(data.get("detail", {})).items()),
            children=tuple(cls.from_dict(child) for child in data.get("children", [])),
        )


def _spill_of(node: Mapping[str, Any]) -> str | None:
    if node.get("Sort Space Type") == "Disk":
        return f"sort spilled to disk ({node.get('Sort Method', 'external')}, {node.get('Sort Space Used', '?')} kB)"
    batches = max(int(node.get("Hash Batches", 1)), int(node.get("HashAgg Batches", 1) or 1))
    if batches > 1:
        return f"hash used {batches} batches (spilled to disk)"
    return None


def parse_node(node: Mapping[str, Any]) -> PlanNode:
    """Build the stable model of one EXPLAIN JSON node and its children."""
    return PlanNode(
        node_type=str(node["Node Type"]),
        relation=node.get("Relation Name"),
        index=node.get("Index Name"),
        join_type=node.get("Join Type"),
        strategy=node.get("Strategy"),
        parent_relationship=node.get("Parent Relationship"),
        total_cost=float(node.get("Total Cost", 0.0)),
        plan_rows=float(node.get("Plan Rows", 0.0)),
        actual_rows=float(node.get("Actual Rows", 0.0)),
        actual_loops=int(node.get("Actual Loops", 1)),
        buffers=Buffers.from_explain_node(node),
        spill=_spill_of(node),
        detail=tuple((key, str(node[key])) for key in _DETAIL_KEYS if key in node),
        children=tuple(parse_node(child) for child in node.get("Plans", [])),
    )


def parse_explain(document: Any) -> PlanNode:
    """Parse the value returned by EXPLAIN (FORMAT JSON): a one-element list holding {"Plan": ...}."""
    if isinstance(document, str):
        document = json.loads(document)
    if not isinstance(document, list) or not document or "Plan" not in document[0]:
        raise ValueError("not an EXPLAIN (FORMAT JSON) result")
    return parse_node(document[0]["Plan"])
