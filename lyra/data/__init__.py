"""Data: the writer and reader of the official SDG dataset layout, sampling rules, safe latent loading.

The SDG run loop that feeds the writer from a generator is :mod:`lyra.pipelines.sdg` (this package never imports a
generator).
"""

from lyra.data.check import CheckOptions, Problem, check_dataset
from lyra.data.exr import DepthZipError, read_depth_zip, write_depth_zip
from lyra.data.layout import MODALITIES, DataError, Layout
from lyra.data.reader import (
    ReaderConfig,
    Sample,
    SceneDataset,
    SourceClip,
    load_latent_stats,
    read_latent,
    read_source_video,
    split_keys,
)
from lyra.data.safe_pickle import UnsafePickleError, load_numpy_pickle, save_numpy_pickle
from lyra.data.sampling import SamplePlan, SamplingConfig, normalized_times, plan_sample
from lyra.data.writer import TrajectoryRecord, WriteOptions, scene_complete, write_scene, write_source

__all__ = [
    "MODALITIES",
    "CheckOptions",
    "DataError",
    "DepthZipError",
    "Layout",
    "Problem",
    "ReaderConfig",
    "Sample",
    "SamplePlan",
    "SamplingConfig",
    "SceneDataset",
    "SourceClip",
    "TrajectoryRecord",
    "UnsafePickleError",
    "WriteOptions",
    "check_dataset",
    "load_latent_stats",
    "load_numpy_pickle",
    "normalized_times",
    "plan_sample",
    "read_depth_zip",
    "read_latent",
    "read_source_video",
    "save_numpy_pickle",
    "scene_complete",
    "split_keys",
    "write_depth_zip",
    "write_scene",
    "write_source",
]
