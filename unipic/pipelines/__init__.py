"""Sampling pipelines (diffusers `DiffusionPipeline` subclasses)."""

from unipic.pipelines.kontext import PromptEncoding, UniPicKontextPipeline

__all__ = ["PromptEncoding", "UniPicKontextPipeline"]
