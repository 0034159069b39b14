"""Offline validation of a Kubernetes/KServe object (a YAML dict) against the kserve + kubernetes model classes.

No validator covers KServe CRDs offline (kubeconform is not installable, `kubectl` needs a server;
notes/feas_ops.md §7), but the generated SDK classes carry every field's wire name (`attribute_map`) and type
(`openapi_types`). Walking a document with them flags unknown or misspelt keys and mistyped values, which is what
breaks a deployment at apply time.
"""

from __future__ import annotations

import re
from typing import Any


def _model_class(name: str) -> type | None:
    import kubernetes.client.models as k8s

    from unipic.serving.kserve_import import kserve

    ks = kserve.models

    return getattr(ks, name, None) or getattr(k8s, name, None)


_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
    "ResourceQuantity": (str, int, float),
}


def validate_object(doc: Any, type_name: str, path: str = "") -> list[str]:
    """Errors (empty when valid) of `doc` against the OpenAPI type `type_name` (e.g. 'V1beta1InferenceService')."""
    errors: list[str] = []
    where = path or "(root)"
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(doc, list):
            return [f"{where}: expected a list, got {type(doc).__name__}"]
        for i, item in enumerate(doc):
            errors += validate_object(item, m.group(1), f"{path}[{i}]")
        return errors
    m = re.fullmatch(r"dict\((\w+), (.+)\)", type_name)
    if m:
        if not isinstance(doc, dict):
            return [f"{where}: expected a mapping, got {type(doc).__name__}"]
        for k, v in doc.items():
            errors += validate_object(v, m.group(2), f"{path}.{k}")
        return errors
    if type_name in _SCALARS:
        allowed = _SCALARS[type_name]
        if doc is not None and not isinstance(doc, allowed) or (type_name == "int" and isinstance(doc, bool)):
            return [f"{where}: expected {type_name}, got {type(doc).__name__} {doc!r}"]
        return []
    cls = _model_class(type_name)
    if cls is None:
        return []  # an opaque type the SDK does not model (e.g. IntOrString)
    if not isinstance(doc, dict):
        return [f"{where}: expected a {type_name} mapping, got {type(doc).__name__}"]
    by_wire = {wire: attr for attr, wire in cls.attribute_map.items()}
    for key, value in doc.items():
        attr = by_wire.get(key)
        if attr is None:
            close = [w for w in by_wire if w.lower() == key.lower() or w.lower().startswith(key.lower()[:5])]
            hint = f" (did you mean {', '.join(sorted(close)[:3])}?)" if close else ""
            errors.append(f"{path}.{key}: unknown field for {type_name}{hint}")
            continue
        errors += validate_object(value, cls.openapi_types[attr], f"{path}.{key}")
    return errors


KIND_TYPES = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService",
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "V1alpha1ServingRuntime",
}


def validate_manifest(doc: dict[str, Any], k8s_version: str = "1.32") -> list[str]:
    """KServe kinds through the model walker; built-in kinds through kubernetes-validate (strict)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in KIND_TYPES:
        return validate_object(doc, KIND_TYPES[key])
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {getattr(exc, 'message', exc)}"]
    return []
