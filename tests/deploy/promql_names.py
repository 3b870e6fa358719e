"""Shared by the deploy tests: turn rule and dashboard expressions into parsed
PromQL (promql-parser) and list the metric names they select, to compare with
what adlmon/metrics.py exports (ecosystem.md §2.3, §5.5)."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from adlmon.metrics import FAMILIES, Metrics, catalogue
from tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "adlmon.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "rules" / "adlmon.rules.test.yml"
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))

# Series Prometheus itself attaches to every scrape target.
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                        "scrape_samples_post_metric_relabeling", "scrape_series_added"}
RATE_FUNCS = {"rate", "increase", "irate"}
# A duration no one writes by hand: stands for $__rate_interval once substituted.
RATE_INTERVAL = "1234s"
RATE_INTERVAL_SECONDS = 1234

_GRAFANA_RANGE = re.compile(r"\$__rate_interval|\$\{__rate_interval\}")
_GRAFANA_OTHER_RANGE = re.compile(r"\$__(interval|range)\b")
_GRAFANA_VAR = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<sel>.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$")


def promtool() -> str:
    return require_tool("promtool", package="prometheus")


def grafana_to_promql(expr: str) -> str:
    """Substitute Grafana's variables so the text is plain PromQL."""
    expr = _GRAFANA_RANGE.sub(RATE_INTERVAL, expr)
    expr = _GRAFANA_OTHER_RANGE.sub("5m", expr)
    return _GRAFANA_VAR.sub(".*", expr)


def label_values_selector(query: str) -> str | None:
    """The series selector inside a ``label_values(selector, label)`` variable query."""
    m = _LABEL_VALUES.match(query)
    return m.group("sel") if m else None


def selectors(expr: str) -> list[dict]:
    """Every vector selector of a PromQL expression: name, whether it is inside
    rate/increase/irate, and that function's range in seconds."""
    tree = promql_parser.parse(expr)  # raises ValueError on bad PromQL
    stack: list = []
    found: list[dict] = []

    def pre(node):
        stack.append(node)
        if isinstance(node, promql_parser.VectorSelector):
            call = next((n for n in reversed(stack[:-1]) if isinstance(n, promql_parser.Call)
                         and n.func.name in RATE_FUNCS), None)
            rng = None
            if call is not None:
                arg = call.args[0]
                rng = arg.range.total_seconds() if isinstance(arg, promql_parser.MatrixSelector) \
                    else None
            found.append({"name": node.name, "in_rate": call is not None, "range_s": rng})

    def post(node):
        stack.pop()

    promql_parser.walk(tree, pre, post)
    return found


def base_name(name: str) -> str:
    """A histogram's series name -> its family name."""
    hist = {f.name for f in FAMILIES if f.kind == "histogram"}
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in hist:
            return name[: -len(suffix)]
    return name


def exported_names() -> set[str]:
    """Everything a fresh ``Metrics`` exposes: the catalogue plus the process and
    platform collectors it registers (counters by their ``_total`` name)."""
    names = set(catalogue())
    text = Metrics().exposition().decode()
    for fam in text_string_to_metric_families(text):
        names.update(s.name for s in fam.samples)
        names.add(fam.name)
    return names


def counter_names() -> set[str]:
    names = {f.name for f in FAMILIES if f.kind == "counter"}
    text = Metrics().exposition().decode()
    for fam in text_string_to_metric_families(text):
        if fam.type == "counter":
            names.update(s.name for s in fam.samples if s.name.endswith("_total"))
    return names
