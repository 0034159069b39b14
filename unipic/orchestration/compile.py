"""Compile a pipeline to KFP IR YAML and validate it offline.

The Argo translation happens server-side, so nothing official validates IR without a cluster. We parse
it strictly into the pipeline-spec protobufs (unknown fields raise), re-parse the executor configs into
their typed messages (a typo such as `cpuLimt` passes otherwise), and check cross-references.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from unipic.errors import UniPicError


def compile_pipeline(pipeline_func: Callable[..., Any], out_path: str | Path) -> Path:
    from kfp import compiler

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.yaml")
    compiler.Compiler().compile(pipeline_func, str(tmp))
    validate_ir(tmp)
    tmp.replace(out)
    return out


def validate_ir(path: str | Path) -> dict[str, Any]:
    """Strictly validate a compiled IR YAML; return the parsed PipelineSpec as a dict."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    docs = list(yaml.safe_load_all(Path(path).read_text()))
    if not docs or not isinstance(docs[0], dict):
        raise UniPicError(f"{path}: not a KFP IR YAML (no pipeline spec document)")
    try:
        spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
        json_format.ParseDict(docs[0].get("deploymentSpec", {}), pipeline_spec_pb2.PipelineDeploymentConfig())
        if len(docs) > 1 and docs[1]:
            _validate_platform(docs[1])
    except json_format.ParseError as exc:
        raise UniPicError(f"{path}: invalid pipeline spec: {exc}") from None
    _check_references(docs[0], path)
    return json_format.MessageToDict(spec)


def _validate_platform(doc: dict[str, Any]) -> None:
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2

    plat = json_format.ParseDict(doc, pipeline_spec_pb2.PlatformSpec())
    for cfg in plat.platforms["kubernetes"].deployment_spec.executors.values():
        json_format.ParseDict(
            json_format.MessageToDict(cfg), kubernetes_executor_config_pb2.KubernetesExecutorConfig()
        )


def _check_references(spec: dict[str, Any], path: str | Path) -> None:
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    components = spec.get("components", {})
    for name, comp in components.items():
        label = comp.get("executorLabel")
        if label and label not in executors:
            raise UniPicError(f"{path}: component {name} points at missing executor {label}")
    dags = [spec.get("root", {})] + list(components.values())
    for dag in dags:
        tasks = dag.get("dag", {}).get("tasks", {})
        for tname, task in tasks.items():
            ref = task.get("componentRef", {}).get("name")
            if ref and ref not in components:
                raise UniPicError(f"{path}: task {tname} points at missing component {ref}")
            for dep in task.get("dependentTasks", []):
                if dep not in tasks:
                    raise UniPicError(f"{path}: task {tname} depends on missing task {dep}")
