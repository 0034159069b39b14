"""KFP component: the exit handler that writes the run report, whatever the run's outcome."""

from kfp import dsl

from components.images import CURATE


@dsl.component(base_image=CURATE, install_kfp_package=False)
def write_run_report(
    preset: str,
    overrides: list,
    pipeline_root: str,
    job_name: str,
    status: dsl.PipelineTaskFinalStatus,
) -> str:
    """Write `run_report.html` for the run: every stage's outputs, metrics, report links and images. With a
    local pipeline root the page sits next to the artifacts; with an s3:// root it is published to
    s3://<runs bucket>/<job name>/. Returns where the report is."""
    from pathlib import Path

    from unipic.config import config_hash, load_config
    from unipic.orchestration.run_report import write_run_report as write
    from unipic.storage import is_s3_uri

    cfg = load_config(preset, [str(o) for o in overrides])
    header = {"job": job_name, "status": status.state, "error": status.error_message or "-", "preset": preset,
              "overrides": list(overrides), "config_hash": config_hash(cfg)}
    if not is_s3_uri(pipeline_root):
        return str(write(Path(pipeline_root) / job_name, header=header))
    import tempfile

    from unipic.storage import ObjectStore

    store = ObjectStore(cfg.store)
    with tempfile.TemporaryDirectory() as tmp:
        job_dir = Path(tmp) / job_name
        store.download_dir(f"{pipeline_root.rstrip('/')}/{job_name}", job_dir)
        report = write(job_dir, header=header)
        uri = f"s3://{cfg.store.buckets.runs}/{job_name}/{report.name}"
        store.upload_file(report, uri)
    return uri
