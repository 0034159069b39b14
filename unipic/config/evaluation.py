"""Evaluation: benchmarks, the judges that score them, and the promotion gate.

Judges are remote services at cluster scale (a VLM behind an OpenAI-compatible route, a scorer behind
KServe V2). Locally the same clients talk to `unipic.judges.local_server` on 127.0.0.1, so the protocol
code that runs in production is the code the tests exercise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from unipic.config.base import Section

BenchmarkName = Literal["shapes_geneval", "shapes_gedit", "geneval", "dpg", "gedit", "imgedit"]
BENCHMARKS: tuple[str, ...] = BenchmarkName.__args__  # type: ignore[attr-defined]


class JudgeConfig(Section):
    """An OpenAI-compatible chat-completions VLM judge (vLLM / KServe OpenAI route / api.openai.com).

    GEdit-Bench's authors judge with GPT-4.1 (VIEScore), ImgEdit's with GPT-4o; record which one you use,
    scores from different judges are not comparable."""

    base_url: str = Field(default="http://127.0.0.1:18480/v1", description="up to and including /v1")
    model: str = Field(default="shapesworld-judge", description="model name sent in the request")
    api_key_env: str = Field(default="UNIPIC_JUDGE_API_KEY", description="env var holding the API key (optional)")
    timeout_s: float = Field(default=30.0, gt=0, description="per request")
    max_retries: int = Field(default=3, ge=0, le=20, description="retries on timeouts, 429 and 5xx")
    backoff_s: float = Field(default=0.5, ge=0, description="first retry delay; doubles each retry")
    max_backoff_s: float = Field(default=8.0, ge=0)
    concurrency: int = Field(default=8, ge=1, le=256, description="requests in flight at once")
    reask_unparseable: int = Field(
        default=1, ge=0, le=5,
        description="ask again this many times when the answer cannot be parsed; then it is excluded",
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=512, ge=16)


class ScorerConfig(Section):
    """A scorer model over the KServe V2 REST protocol (/v2/models/NAME/infer), e.g. an EditReward model."""

    base_url: str = Field(default="http://127.0.0.1:18480", description="scheme://host:port, no path")
    model_name: str = "shapesworld-scorer"
    api_key_env: str | None = Field(default="UNIPIC_SCORER_API_KEY", description="env var with a Bearer token")
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=8.0, ge=0)
    batch_size: int = Field(default=16, ge=1, description="images per infer request")
    concurrency: int = Field(default=4, ge=1, le=64)


class GenerationConfig(Section):
    """How a benchmark's images are generated. Defaults follow each benchmark's protocol where the
    authors fixed one (GenEval: 4 images per prompt; DPG-Bench: 4 tiled 2x2)."""

    images_per_prompt: int = Field(default=4, ge=1, le=16)
    seed: int = Field(default=42, description="GenEval's diffusers_generate.py default")
    num_inference_steps: int = Field(default=20, ge=1)
    guidance_scale: float = Field(default=4.0, ge=0)
    image_guidance_scale: float = Field(
        default=1.0, ge=0,
        description="edit items only: InstructPix2Pix-style guidance towards the source image (1 = off)",
    )
    edit_guidance_scale: float | None = Field(
        default=None, ge=0,
        description="text guidance for edit items; None: guidance_scale. A smoke model drew best at CFG 8 but "
        "recoloured worse there than at 4 (benchmarks/results/pretrain_smoke_quality.md)",
    )
    height: int | None = Field(default=None, description="None: the benchmark's / model's default size")
    width: int | None = None
    batch_size: int = Field(default=16, ge=1, description="prompts per pipeline call")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: the GPU when CUDA is available, else the CPU"
    )


class GateConfig(Section):
    """Promote a candidate only when it clears absolute thresholds and does not regress against the
    deployed model by more than `max_regression` on any shared headline metric."""

    thresholds: dict[str, float] = Field(
        default_factory=dict, description="metric key (benchmark.metric) -> minimum value"
    )
    max_regression: float = Field(
        default=0.02, ge=0, le=1, description="allowed relative drop of a headline vs the deployed model"
    )
    max_judge_failure_rate: float = Field(
        default=0.05, ge=0, le=1, description="reject when more judge answers than this were excluded"
    )
    require_deployed: bool = Field(default=False, description="reject when no deployed baseline is known")


class EvaluationConfig(Section):
    benchmarks: list[BenchmarkName] = Field(default_factory=lambda: ["shapes_geneval", "shapes_gedit"])
    split: Literal["heldout", "train", "all"] = Field(
        default="heldout", description="ShapesWorld twins: compositions never seen in training by default"
    )
    n_per_task: int = Field(default=8, ge=1, description="ShapesWorld twins: prompts per task/category")
    image_size: int | None = Field(
        default=None, ge=16, le=1024,
        description="ShapesWorld twins: canvas of sources and ground truth; None = shapes.image_size (training)",
    )
    seed: int = Field(default=1234, description="ShapesWorld twins: which scenes are drawn")
    data_dir: str = Field(
        default="data/benchmarks", description="folder holding the public benchmarks' files (prompts, metadata)"
    )
    limit: int | None = Field(default=None, ge=1, description="evaluate only the first N items (smoke runs)")
    judge_mode: Literal["local", "remote"] = Field(
        default="local",
        description="local: start the ShapesWorld judge server on 127.0.0.1 for this run; remote: use `judge`",
    )
    geneval_detector: Literal["mask2former", "shapesworld"] = Field(
        default="mask2former", description="GenEval's detector + colour classifier (shapesworld: the exact one)"
    )
    geneval_model_dir: str | None = Field(
        default=None, description="folder with mask2former/{config.py,model.pth} and clip/ (cluster scale)"
    )
    gedit_language: Literal["en", "cn"] = "en"
    dpg_reference_quirks: bool = Field(
        default=True, description="reproduce DPG-Bench's reference script quirks (first CSV row skipped)"
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    scorer: ScorerConfig = Field(default_factory=ScorerConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    export_official_layout: bool = Field(
        default=False, description="also write images in each benchmark's official layout (<bench>/official/)"
    )
    grid_max_items: int = Field(default=24, ge=0, description="images per benchmark shown in the HTML report")
