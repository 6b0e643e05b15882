"""Pipelines: image -> 3D and text -> image -> 3D end to end (stages wired together; no model code here)."""

from lyra.pipelines.image_to_3d import (
    OUTPUT_FILES,
    GenerateConfig,
    PipelineError,
    PipelineResult,
    decode_samples,
    generate_from_image,
    load_decoder,
    load_models,
    novel_orbit,
    novel_view_metrics,
    prepare_source,
    render_views,
    run_pipeline,
    shipped_decoder_dir,
    source_from_world,
    stereo_view,
    world_metrics,
)
from lyra.pipelines.report import StageTimer, write_report
from lyra.pipelines.sdg import SDGConfig, run_sdg
from lyra.pipelines.text_to_image import TextToImageError, load_text_to_image, text_to_image

__all__ = [
    "OUTPUT_FILES", "GenerateConfig", "PipelineError", "PipelineResult", "SDGConfig", "StageTimer",
    "TextToImageError", "decode_samples", "generate_from_image", "load_decoder", "load_models", "load_text_to_image",
    "novel_orbit", "novel_view_metrics", "prepare_source", "render_views", "run_pipeline", "run_sdg",
    "shipped_decoder_dir", "source_from_world", "stereo_view", "text_to_image", "world_metrics", "write_report",
]
