"""A picture of the pipeline DAG, drawn from the compiled IR (so the picture cannot drift from the code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def dag_edges(spec: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]], dict[str, str]]:
    """Tasks (nested DAGs flattened), dependency edges, and the group each task belongs to.

    A dependency on a sub-DAG (an If/Else branch, the exit-handler body) becomes edges to the sub-DAG's entry
    tasks; what depends on a sub-DAG depends on its exit tasks."""
    comps = spec.get("components", {})
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    group: dict[str, str] = {}

    def expand(dag: dict[str, Any], label: str) -> tuple[set[str], set[str]]:
        ends: dict[str, tuple[set[str], set[str]]] = {}
        tasks = dag.get("tasks", {})
        for name, task in tasks.items():
            comp = comps.get(task.get("componentRef", {}).get("name", ""), {})
            if "dag" in comp:
                ends[name] = expand(comp["dag"], name)
            else:
                nodes.append(name)
                group[name] = label
                if task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED":
                    group[name] = "exit handler"
                ends[name] = ({name}, {name})
        depended = set()
        for name, task in tasks.items():
            if group.get(name) == "exit handler":
                continue
            for dep in task.get("dependentTasks", []):
                if dep in ends:
                    depended.add(dep)
                    edges.extend((a, b) for a in ends[dep][1] for b in ends[name][0])
        has_deps = {n for n, t in tasks.items() if any(d in ends for d in t.get("dependentTasks", []))}
        entries = set().union(*(ends[n][0] for n in tasks if n not in has_deps)) if tasks else set()
        exits = set().union(*(ends[n][1] for n in tasks if n not in depended)) if tasks else set()
        return entries, exits

    expand(spec.get("root", {}).get("dag", {}), "")
    return nodes, _transitive_reduction(sorted(set(edges))), group


def _transitive_reduction(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop a->c when a longer path a->...->c exists: the picture shows order, not every data edge."""
    succ: dict[str, set[str]] = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)

    def reachable(start: str, skip: tuple[str, str]) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            cur = stack.pop()
            for nxt in succ.get(cur, ()):
                if (cur, nxt) == skip or nxt in seen:
                    continue
                seen.add(nxt)
                stack.append(nxt)
        return seen

    return [(a, b) for a, b in edges if b not in reachable(a, (a, b))]


def _layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    depth = {n: 0 for n in nodes}
    for _ in nodes:
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    return depth


def plot_dag(ir_yaml: str | Path, out_png: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = next(yaml.safe_load_all(Path(ir_yaml).read_text()))
    nodes, edges, group = dag_edges(spec)
    depth = _layers(nodes, edges)
    exit_nodes = [n for n in nodes if group[n] == "exit handler"]
    for n in exit_nodes:
        depth[n] = max(depth.values(), default=0) + 1
    by_layer: dict[int, list[str]] = {}
    for n in nodes:
        by_layer.setdefault(depth[n], []).append(n)
    pos = {n: (d, -i + (len(ns) - 1) / 2) for d, ns in by_layer.items() for i, n in enumerate(sorted(ns))}
    fig, ax = plt.subplots(figsize=(max(8, 2.3 * len(by_layer)), 2 + 1.2 * max(len(v) for v in by_layer.values())))
    for a, b in edges:
        if group[b] == "exit handler":
            continue
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax.annotate("", xy=(x2 - 0.42, y2), xytext=(x1 + 0.42, y1),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=1.2))
    for n, (x, y) in pos.items():
        color = "#f3d9b1" if n in exit_nodes else ("#d6e6f5" if group[n] else "#dff0d8")
        ax.text(x, y, n.replace("-", "-\n", 1) if len(n) > 16 else n, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.4", fc=color, ec="#333"))
    ax.set_xlim(-0.7, max(depth.values(), default=0) + 0.7)
    ys = [p[1] for p in pos.values()] or [0]
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    ax.set_title(title or spec.get("pipelineInfo", {}).get("name", "pipeline"))
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
