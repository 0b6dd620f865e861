"""Read one RCA case directory (DESIGN.md section 3) into plain data.

The parsers take text and are pure; `load_case` is the thin file reader around them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rca.model import Edge, SignalTable


class CaseError(ValueError):
    """A case directory or one of its files cannot be used; the message says which."""


@dataclass(frozen=True)
class CaseLabel:
    system: str
    service: str
    fault: str


@dataclass(frozen=True)
class Case:
    name: str
    table: SignalTable
    inject_time: float
    edges: tuple[Edge, ...] = ()
    label: CaseLabel | None = None


def parse_signal_table(text: str, origin: str = "data.csv") -> SignalTable:
    """`time` column then one column per series; empty or unparsable cells become NaN."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0]:
        raise CaseError(f"{origin}: empty file")
    header = [name.strip() for name in rows[0]]
    if header[0] != "time":
        raise CaseError(f"{origin}: first column must be 'time', found {header[0]!r}")
    columns = tuple(header[1:])
    if len(set(columns)) != len(columns):
        raise CaseError(f"{origin}: duplicate column names")
    body = [row for row in rows[1:] if row and any(cell.strip() for cell in row)]
    times = np.empty(len(body), dtype=np.float64)
    values = np.full((len(body), len(columns)), np.nan, dtype=np.float64)
    for i, row in enumerate(body):
        time = _number(row[0])
        if math.isnan(time):
            raise CaseError(f"{origin}: row {i + 2} has no time")
        times[i] = time
        for j, cell in enumerate(row[1 : len(columns) + 1]):
            values[i, j] = _number(cell)
    order = np.argsort(times, kind="stable")
    return SignalTable(times[order], columns, values[order])


def parse_inject_time(text: str, origin: str = "inject_time.txt") -> float:
    value = _number(text)
    if math.isnan(value):
        raise CaseError(f"{origin}: expected unix seconds, found {text.strip()[:40]!r}")
    return value


def parse_edges(text: str, source: str = "static", origin: str = "graph.csv") -> tuple[Edge, ...]:
    """`caller,callee` rows under that header; blank rows are skipped."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]
    if not rows:
        return ()
    header = [name.strip() for name in rows[0]]
    if header[:2] != ["caller", "callee"]:
        raise CaseError(f"{origin}: header must start with caller,callee, found {header}")
    edges = []
    for i, row in enumerate(rows[1:]):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise CaseError(f"{origin}: row {i + 2} needs a caller and a callee")
        edges.append(Edge(row[0].strip(), row[1].strip(), source))
    return tuple(edges)


def parse_label(text: str, origin: str = "label.json") -> CaseLabel:
    try:
        raw = json.loads(text)
        return CaseLabel(str(raw["system"]), str(raw["service"]), str(raw["fault"]))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CaseError(f"{origin}: needs system, service and fault ({error})") from error


def load_case(case_dir: Path) -> Case:
    """Read data.csv and inject_time.txt (required), graph.csv and label.json (optional)."""
    if not case_dir.is_dir():
        raise CaseError(f"{case_dir}: not a directory")
    table = parse_signal_table(_read(case_dir / "data.csv"), str(case_dir / "data.csv"))
    inject_path = case_dir / "inject_time.txt"
    inject_time = parse_inject_time(_read(inject_path), str(inject_path))
    graph_path = case_dir / "graph.csv"
    edges = parse_edges(_read(graph_path), origin=str(graph_path)) if graph_path.is_file() else ()
    label_path = case_dir / "label.json"
    label = parse_label(_read(label_path), str(label_path)) if label_path.is_file() else None
    return Case(case_dir.name, table, inject_time, edges, label)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise CaseError(f"{path}: missing") from error
    except OSError as error:
        raise CaseError(f"{path}: cannot read ({error})") from error


def _number(cell: str) -> float:
    """A finite number, else NaN (empty cell, text, inf)."""
    try:
        value = float(cell)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan
