"""Pluggable judges: HTTP clients for the protocols real judges speak, and a local stand-in server.

- `OpenAIVLMJudge`: a VLM over OpenAI-compatible chat completions (vLLM / KServe / GPT-4.1), VIEScore and
  rubric prompts, strict parsing, retries, bounded concurrency.
- `KServeV2Scorer`: a scorer model over the KServe V2 REST protocol.
- `LocalJudgeServer` (`unipic.judges.local_server`): both protocols on 127.0.0.1, answered by the exact
  ShapesWorld detector, with fault switches for tests.

Used by the benchmarks (`unipic.evaluation`) and as RL rewards (`unipic.rl.rewards`).
"""

from unipic.judges.errors import JudgeError
from unipic.judges.kserve_v2 import KServeV2Scorer
from unipic.judges.openai_vlm import JudgeRequest, OpenAIVLMJudge, rubric_parser, viescore_parser
from unipic.judges.parsing import ParseFailure, parse_rubric, parse_viescore
from unipic.judges.verdict import JudgeStats, Verdict
from unipic.judges.viescore import VIEScoreResult

__all__ = [
    "JudgeError", "JudgeRequest", "JudgeStats", "KServeV2Scorer", "OpenAIVLMJudge", "ParseFailure",
    "VIEScoreResult", "Verdict", "parse_rubric", "parse_viescore", "rubric_parser", "viescore_parser",
]
