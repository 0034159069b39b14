"""The DAG picture is drawn from the compiled IR: every task appears, edges follow dependencies."""

from pathlib import Path

import yaml

from unipic.orchestration.dag_plot import dag_edges, plot_dag

IR = Path(__file__).resolve().parents[2] / "pipelines" / "compiled" / "unipic2.yaml"


def test_edges_follow_the_ir(tmp_path):
    spec = next(yaml.safe_load_all(IR.read_text()))
    nodes, edges, group = dag_edges(spec)
    assert {"check-prerequisites", "generate-shapes", "write-run-report"} <= set(nodes)
    assert ("check-prerequisites", "generate-shapes") in edges
    assert group["write-run-report"] == "exit handler"
    png = plot_dag(IR, tmp_path / "dag.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
