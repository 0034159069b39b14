"""Benchmark evaluation: GenEval, DPG-Bench, GEdit-Bench, ImgEdit and the ShapesWorld twins of GenEval and
GEdit-Bench; reports; and the promotion gate.

A benchmark is items + a generation step (`generation.generate`, resumable) + a judge + an aggregation
(`benchmarks`). `runner.evaluate` runs a list of them on a model and writes results.json, metrics.jsonl
and report.html; `gate.decide` turns results into promote / reject with reasons.
"""

from unipic.evaluation.errors import BenchmarkFormatError, EvaluationError
from unipic.evaluation.gate import GateDecision, decide, flat_metrics, load_results
from unipic.evaluation.generation import EvalItem, GenerationStats, generate
from unipic.evaluation.runner import evaluate

__all__ = ["BenchmarkFormatError", "EvalItem", "EvaluationError", "GateDecision", "GenerationStats", "decide",
           "evaluate", "flat_metrics", "generate", "load_results"]
