"""Data: the SDG writer and reader of the official dataset layout, sampling rules, safe latent loading."""

from lyra.data.check import CheckOptions, Problem, check_dataset
from lyra.data.exr import DepthZipError, read_depth_zip, write_depth_zip
from lyra.data.layout import MODALITIES, DataError, Layout
from lyra.data.reader import (
    ReaderConfig,
    Sample,
    SceneDataset,
    load_latent_stats,
    read_latent,
    split_keys,
)
from lyra.data.safe_pickle import UnsafePickleError, load_numpy_pickle, save_numpy_pickle
from lyra.data.sampling import SamplePlan, SamplingConfig, plan_sample
from lyra.data.writer import SDGConfig, WriteOptions, run_sdg, scene_complete, write_scene

__all__ = [
    "MODALITIES",
    "CheckOptions",
    "DataError",
    "DepthZipError",
    "Layout",
    "Problem",
    "ReaderConfig",
    "SDGConfig",
    "Sample",
    "SamplePlan",
    "SamplingConfig",
    "SceneDataset",
    "UnsafePickleError",
    "WriteOptions",
    "check_dataset",
    "load_latent_stats",
    "load_numpy_pickle",
    "plan_sample",
    "read_depth_zip",
    "read_latent",
    "run_sdg",
    "save_numpy_pickle",
    "scene_complete",
    "split_keys",
    "write_depth_zip",
    "write_scene",
]
