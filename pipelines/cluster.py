"""Cluster settings applied to pipeline tasks at compile time (kfp-kubernetes). kfp.local ignores them."""

from kfp import kubernetes

from components.images import task_env
from unipic.config.cluster import ClusterConfig, StageResources

# Env names our StoreConfig reads; the Secret keeps the conventional AWS key names.
S3_SECRET_KEYS = {"AWS_ACCESS_KEY_ID": "UNIPIC_S3_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY": "UNIPIC_S3_SECRET_KEY"}


def configure_task(task, resources: StageResources, cluster: ClusterConfig, *, retry: bool = True):
    """Resources, GPUs, S3 credentials from the configured Secret, placement and retries for one task.

    A multi-node stage's task only submits a TrainJob and follows it, so it gets the light resources; the GPUs
    go to the job's pods. Every task carries the image references it was compiled with (for those pods)."""
    if resources.nodes > 1:
        resources = cluster.light
    for key, value in sorted(task_env().items()):
        task.set_env_variable(key, value)
    task.set_cpu_limit(resources.cpu).set_memory_limit(resources.memory)
    if resources.gpus:
        task.set_accelerator_type(cluster.gpu_resource).set_accelerator_limit(resources.gpus)
    kubernetes.use_secret_as_env(task, secret_name=cluster.s3_secret, secret_key_to_env=dict(S3_SECRET_KEYS))
    for key, value in sorted(cluster.node_selector.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for tol in cluster.tolerations:
        kubernetes.add_toleration(task, key=tol.key, operator=tol.operator, value=tol.value, effect=tol.effect)
    if retry and cluster.retries:
        task.set_retry(num_retries=cluster.retries, backoff_duration="60s", backoff_factor=2.0)
    return task
