"""Collision geometry from a Gaussian scene: depth+alpha renders -> TSDF -> ground plane -> meshes -> convex hulls.

Pipeline (:func:`build_collision`; each step timed in ``CollisionGeometry.timings``):

1. Render expected z-depth and alpha of the Gaussians at up to ``max_views`` of the given cameras
   (``lyra.render.rasterize``, at most ``max_width`` pixels wide).
2. Unproject the depth (alpha >= ``alpha_min``); find the ground (RANSAC, :mod:`lyra.sim.ground`) and with it the
   sim frame: +z up, ground at z = 0, metres = scene units x ``scale``.
3. Fuse a TSDF over the scene's robust bounds in that frame (:func:`lyra.sim.tsdf.fuse_tsdf`): free in front of
   surfaces and along rays that hit nothing, solid behind surfaces where no camera saw free space.
4. Marching cubes (scikit-image) of the whole volume: ``mesh`` (closed, the ground slab included).
5. Objects: the volume with everything below ``ground_cut_voxels`` above the ground removed (the ground becomes
   the plane z = 0), split into connected solids (objects standing on the ground are extended down to it),
   each meshed, decimated to ``max_faces`` (fast-simplification) and decomposed into convex hulls (CoACD, or one
   convex hull per object with ``decompose="hull"``).

Everything returned is in the sim frame in metres; ``sim_from_scene`` maps scene points there.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lyra.sim.errors import SimError
from lyra.sim.ground import UP_AXES, Ground, axis_vector, camera_centers, camera_up, detect_ground, sim_frame
from lyra.sim.tsdf import Volume, fuse_tsdf, incidence_cos

DECOMPOSITIONS = ("coacd", "hull", "none")
DEPTHS = ("median", "expected")
CACHE_VERSION = 2
GROUND_MIN_COS = 0.2  # ground and bounds come from pixels seen within ~78 degrees of their normal


@dataclass
class CollisionConfig:
    """Options of :func:`build_collision`.

    Attributes:
        grid: voxels along the longest side of the bounds (ignored when ``voxel`` is set).
        voxel: voxel edge in scene units, or None (from ``grid``).
        trunc_voxels: TSDF truncation in voxels.
        alpha_min: rendered alpha below which a pixel is a ray that hit nothing (observed free space).
        incidence_power: each pixel's depth weighs cos(incidence)^p in the TSDF average (0: all alike).
            Expected depth of splats is biased towards the camera where the surface is seen at a grazing
            angle; weighting by the incidence cosine lets the views that face a surface decide where it is.
        depth: "median" (camera z where a pixel becomes half opaque, :mod:`lyra.sim.depth`) or "expected"
            (the rasterizer's alpha-normalised expected depth).
        max_views: cameras used for fusion (evenly spaced among those given).
        max_width: render width in pixels (cameras are resized down to it).
        up: "auto" (fitted ground normal, searched near the cameras' image-up) or an axis ("-y", "z", ...).
        scale: metres per scene unit, or "auto" (the median camera height above the ground is ``camera_height``).
        camera_height: metres, for ``scale="auto"``.
        ground: detect the ground, cut it out of the objects and model it as the plane z = 0.
        ground_cut_voxels: solid this far above the ground (voxels) counts as ground.
        bounds: ((x0, y0, z0), (x1, y1, z1)) of the grid in the sim frame in scene units, or None (robust
            bounds of the depth points: ``bounds_percentile`` .. 100 - it, widened by ``margin`` of the extent).
        min_component_voxels: smaller solids are dropped as floaters.
        max_parts: at most this many objects (the largest) are kept.
        max_faces: faces per object after decimation.
        decompose: "coacd", "hull" (one convex hull per object) or "none".
        coacd_threshold: CoACD concavity threshold (smaller: more, tighter hulls; slower).
        convex_tolerance: an object whose convex hull exceeds its volume by less than this fraction of the hull
            is taken as its hull (no CoACD run).
        max_hulls_per_part: CoACD's max_convex_hull (-1: no limit).
        max_hull_vertices: vertices per hull (CoACD's max_ch_vertex).
        seed: RANSAC and CoACD seed.
    """

    grid: int = 128
    voxel: float | None = None
    trunc_voxels: float = 3.0
    alpha_min: float = 0.5
    incidence_power: float = 1.0
    depth: str = "expected"
    max_views: int = 64
    max_width: int = 320
    up: str = "auto"
    scale: float | str = 1.0
    camera_height: float = 1.6
    ground: bool = True
    ground_cut_voxels: float = 1.5
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    bounds_percentile: float = 1.0
    margin: float = 0.05
    min_component_voxels: int = 8
    max_parts: int = 64
    max_faces: int = 2000
    decompose: str = "coacd"
    coacd_threshold: float = 0.1
    convex_tolerance: float = 0.15
    max_hulls_per_part: int = -1
    max_hull_vertices: int = 64
    seed: int = 0

    def validate(self) -> None:
        if self.up not in UP_AXES:
            raise SimError(f"up must be one of {', '.join(UP_AXES)}, got {self.up!r}")
        if self.depth not in DEPTHS:
            raise SimError(f"depth must be one of {', '.join(DEPTHS)}, got {self.depth!r}")
        if self.decompose not in DECOMPOSITIONS:
            raise SimError(f"decompose must be one of {', '.join(DECOMPOSITIONS)}, got {self.decompose!r}")
        if not (isinstance(self.scale, str) and self.scale == "auto") and not (
                isinstance(self.scale, (int, float)) and self.scale > 0):
            raise SimError(f"scale must be a positive number or 'auto', got {self.scale!r}")
        if self.grid < 8 and self.voxel is None:
            raise SimError(f"grid must be at least 8 voxels, got {self.grid}")
        if self.voxel is not None and not self.voxel > 0:
            raise SimError(f"voxel must be > 0, got {self.voxel}")
        if self.max_views < 1 or self.max_width < 8 or self.max_faces < 4:
            raise SimError("max_views must be >= 1, max_width >= 8 and max_faces >= 4")


@dataclass
class TriMesh:
    """A triangle mesh: vertices [V, 3] float64, faces [F, 3] int64 (counter-clockwise seen from outside)."""

    vertices: np.ndarray
    faces: np.ndarray

    @property
    def volume(self) -> float:
        """Signed enclosed volume (positive when the faces point outwards)."""
        v = self.vertices[self.faces]
        return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)

    def transformed(self, T: np.ndarray) -> TriMesh:
        """This mesh under the 4x4 (similarity) transform T."""
        v = self.vertices @ T[:3, :3].T + T[:3, 3]
        f = self.faces if np.linalg.det(T[:3, :3]) > 0 else self.faces[:, ::-1]
        return TriMesh(v, f.copy())


@dataclass
class CollisionGeometry:
    """Collision geometry of a scene, in the sim frame (metres, +z up, ground at z = 0).

    Attributes:
        mesh: the fused surface of the whole volume (ground slab included, closed).
        parts: the objects (ground removed), decimated; the input of the decomposition.
        hulls: convex pieces; ``hull_part[i]`` is the index of the part hull i belongs to.
        ground: the ground plane in scene coordinates (None when ``ground=False``).
        sim_from_scene: [4, 4] similarity transform (scale x rotation, translation) scene -> sim frame.
        scale: metres per scene unit.
        voxel: TSDF voxel edge (metres).
        stats: counts and checks; timings: seconds per stage; config: the options used.
    """

    mesh: TriMesh
    parts: list[TriMesh]
    hulls: list[TriMesh]
    hull_part: np.ndarray
    ground: Ground | None
    sim_from_scene: np.ndarray
    scale: float
    voxel: float
    stats: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def scene_from_sim(self) -> np.ndarray:
        return np.linalg.inv(self.sim_from_scene)


# ---------------------------------------------------------------------------------------------- rendering
def select_views(cameras: Any, max_views: int, max_width: int) -> Any:
    """Up to ``max_views`` evenly spaced cameras, resized to at most ``max_width`` pixels wide."""
    n = len(cameras)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_views)).round().astype(int)).tolist()
    cams = cameras[idx]
    if cams.width > max_width:
        s = max_width / cams.width
        cams = cams.resized(max(1, round(cams.height * s)), max_width)
    return cams


def render_depth(gaussians: Any, cameras: Any, chunk: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(depth [N, H, W], alpha [N, H, W]) float32 renders of ``gaussians`` (expected camera z, scene units)."""
    import torch

    from lyra.render import rasterize

    g = gaussians.detach().to("cpu", torch.float32)
    cams = cameras.to("cpu", torch.float32)
    dep, alp = [], []
    with torch.no_grad():
        for s in range(0, len(cams), chunk):
            o = rasterize(g, cams[s:s + chunk], None, near=0.01)
            dep.append(o.depth[:, 0].numpy())
            alp.append(o.alpha[:, 0].numpy())
    return np.concatenate(dep).astype(np.float32), np.concatenate(alp).astype(np.float32)


def unproject(depths: np.ndarray, w2c: np.ndarray, K: np.ndarray, valid: np.ndarray | None = None,
              max_points: int = 200_000) -> np.ndarray:
    """[P, 3] world points of depth maps [N, H, W] (pixel centres; ``valid`` [N, H, W] selects pixels)."""
    n, H, W = depths.shape
    valid = (depths > 0) & np.isfinite(depths) if valid is None else valid & (depths > 0)
    stride = max(1, int(np.ceil(np.sqrt(valid.sum() / max(1, max_points)))))
    v, u = np.mgrid[0:H:stride, 0:W:stride]
    out = []
    for i in range(n):
        z = depths[i, ::stride, ::stride]
        m = valid[i, ::stride, ::stride]
        x = (u[m] + 0.5 - K[i, 0, 2]) / K[i, 0, 0] * z[m]
        y = (v[m] + 0.5 - K[i, 1, 2]) / K[i, 1, 1] * z[m]
        pc = np.stack([x, y, z[m]], 1).astype(np.float64)
        R, t = w2c[i, :3, :3].astype(np.float64), w2c[i, :3, 3].astype(np.float64)
        out.append((pc - t) @ R)
    return np.concatenate(out) if out else np.zeros((0, 3))


# ---------------------------------------------------------------------------------------------- meshing
def marching_cubes(field_: np.ndarray, lo: np.ndarray, voxel: float) -> TriMesh:
    """Zero level set of a grid (< 0 solid) padded with +1 (closed at the border), faces pointing outwards."""
    from skimage.measure import marching_cubes as mc

    if not (field_ < 0).any() or not (field_ > 0).any():
        return TriMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    padded = np.pad(field_, 1, constant_values=1.0)
    v, f, _, _ = mc(padded, 0.0, spacing=(voxel,) * 3, gradient_direction="descent")
    v = v.astype(np.float64) + (np.asarray(lo, np.float64) - 0.5 * voxel)
    return TriMesh(v, f.astype(np.int64))


def decimate(mesh: TriMesh, max_faces: int) -> tuple[TriMesh, bool]:
    """(mesh with at most about ``max_faces`` faces, whether fast-simplification was available)."""
    if len(mesh.faces) <= max_faces:
        return mesh, True
    try:
        import fast_simplification
    except ImportError:
        return mesh, False
    v, f = fast_simplification.simplify(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32),
                                        target_count=max_faces)
    return TriMesh(np.asarray(v, np.float64), np.asarray(f, np.int64)), True


def convex_hull(points: np.ndarray) -> TriMesh:
    """The convex hull of points [P, 3] with outward faces (scipy)."""
    from scipy.spatial import ConvexHull

    h = ConvexHull(points)
    v = points[h.vertices]
    remap = -np.ones(len(points), np.int64)
    remap[h.vertices] = np.arange(len(h.vertices))
    f = remap[h.simplices]
    c = v.mean(0)
    tri = v[f]
    outward = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), tri[:, 0] - c) >= 0
    f[~outward] = f[~outward][:, ::-1]
    return TriMesh(v, f)


def decompose(mesh: TriMesh, cfg: CollisionConfig) -> list[TriMesh]:
    """Convex pieces of one closed mesh (``cfg.decompose``: CoACD, or its convex hull)."""
    if len(mesh.faces) < 4:
        return []
    hull = convex_hull(mesh.vertices)
    if cfg.decompose == "hull":
        return [hull]
    if hull.volume > 0 and (hull.volume - mesh.volume) / hull.volume < cfg.convex_tolerance:
        return [hull]
    try:
        import coacd
    except ImportError as exc:
        raise ImportError("convex decomposition needs CoACD: pip install 'lyra3d[sim]' (or coacd), "
                          "or use decompose='hull'") from exc
    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(mesh.vertices, mesh.faces), threshold=cfg.coacd_threshold,
                            max_convex_hull=cfg.max_hulls_per_part, max_ch_vertex=cfg.max_hull_vertices,
                            seed=cfg.seed)
    out = []
    for v, _f in parts:
        v = np.asarray(v, np.float64)
        if len(v) >= 4:
            try:
                out.append(convex_hull(v))  # CoACD's pieces are convex; re-hull for outward faces
            except Exception:  # noqa: BLE001 - a flat (degenerate) piece cannot collide: skip it
                continue
    return out


def object_fields(vol: Volume, cut: float | None, min_voxels: int, max_parts: int) -> list[tuple[np.ndarray,
                                                                                                np.ndarray]]:
    """Per connected solid of the volume (above the ground cut): (field [x, y, z] cropped, lo [3]).

    With a ground (``cut`` = height above z = 0 below which solid is ground), objects touching the cut are
    extended down to the ground through the solid voxels below them.
    """
    from scipy import ndimage

    T = vol.tsdf
    zc = vol.centers(2)
    solid = T < 0
    obj = solid.copy()
    k_cut = 0
    if cut is not None:
        obj[:, :, zc < cut] = False
        k_cut = int(np.searchsorted(zc, cut))
    labels, n = ndimage.label(obj)
    if n == 0:
        return []
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    order = [int(i) for i in np.argsort(-counts[1:]) + 1 if counts[i] >= min_voxels][:max_parts]
    slices = ndimage.find_objects(labels)
    k_ground = int(np.searchsorted(zc, 0.0)) if cut is not None else 0
    out = []
    for lab in order:
        sl = slices[lab - 1]
        z0 = sl[2].start
        if cut is not None and z0 <= k_cut:
            z0 = min(z0, k_ground)
        box = tuple(slice(max(0, s.start - 2), min(T.shape[a], s.stop + 2)) for a, s in
                    enumerate((sl[0], sl[1], slice(z0, sl[2].stop))))
        m = labels[box] == lab
        if cut is not None and k_cut < T.shape[2]:
            kc = k_cut - box[2].start
            if 0 <= kc < m.shape[2]:
                foot = m[:, :, kc]
                for k in range(max(0, k_ground - box[2].start), kc):
                    m[:, :, k] |= foot & solid[box][:, :, k]
        t = T[box]
        f = np.where(m | (t > 0), t, 1.0).astype(np.float32)
        lo = vol.lo + np.array([b.start for b in box]) * vol.voxel
        out.append((f, lo))
    return out


# ---------------------------------------------------------------------------------------------- the build
def _camera_arrays(cameras: Any) -> tuple[np.ndarray, np.ndarray]:
    return (cameras.w2c.detach().cpu().double().numpy(), cameras.K.detach().cpu().double().numpy())


def collision_from_depth(depths: np.ndarray, alphas: np.ndarray | None, w2c: np.ndarray, K: np.ndarray,
                         cfg: CollisionConfig | None = None, timings: dict[str, float] | None = None,
                         ground_points: np.ndarray | None = None) -> CollisionGeometry:
    """Collision geometry from depth [N, H, W] (+ alpha) maps seen by cameras w2c [N, 4, 4], K [N, 3, 3].

    ``ground_points`` [P, 3] (scene coordinates; default: the unprojected depth) are searched for the ground.
    """
    cfg = cfg or CollisionConfig()
    cfg.validate()
    timings = dict(timings or {})
    depths = np.asarray(depths, np.float32)
    n = depths.shape[0]
    w2c = np.asarray(w2c, np.float64).reshape(n, 4, 4)
    K = np.asarray(K, np.float64).reshape(n, 3, 3)
    valid = (depths > 0) & np.isfinite(depths)
    if alphas is not None:
        valid &= np.asarray(alphas).reshape(depths.shape) >= cfg.alpha_min
    if valid.sum() < 16:
        raise SimError("the scene renders (almost) nothing from its cameras: no surface to mesh")

    t0 = time.perf_counter()
    cosmap = incidence_cos(np.where(valid, depths, 0.0), K)
    pts = unproject(depths, w2c, K, valid & (cosmap >= GROUND_MIN_COS))
    cams = camera_centers(w2c)
    explicit = cfg.up != "auto"
    prior = axis_vector(cfg.up) if explicit else camera_up(w2c)
    if cfg.ground:
        gp = pts if ground_points is None or len(ground_points) < 3 else np.asarray(ground_points, np.float64)
        ground = detect_ground(gp, cams, prior, max_angle_deg=15.0 if explicit else 30.0, exact_up=explicit,
                               seed=cfg.seed)
    else:  # no ground: the up axis alone, the origin at the lowest points
        ground = Ground(prior, -float(np.percentile(pts @ prior, 1)), False, 0.0)
    rigid = sim_frame(ground)
    if cfg.scale == "auto":
        hcam = float(np.median(ground.height(cams)))
        if not (ground.detected and hcam > 0):
            raise SimError("scale 'auto' needs a detected ground below the cameras; give --scale")
        scale = cfg.camera_height / hcam
    else:
        scale = float(cfg.scale)
    timings["ground"] = time.perf_counter() - t0

    # bounds in the rigid (ground-aligned, scene-unit) frame
    pa = pts @ rigid[:3, :3].T + rigid[:3, 3]
    if cfg.bounds is not None:
        lo, hi = np.array(cfg.bounds[0], np.float64), np.array(cfg.bounds[1], np.float64)
        if not (hi > lo).all():
            raise SimError(f"bounds: every max must exceed its min, got {cfg.bounds}")
    else:
        q = cfg.bounds_percentile
        lo, hi = np.percentile(pa, q, axis=0), np.percentile(pa, 100 - q, axis=0)
        if cfg.ground:
            lo[2] = max(lo[2], 0.0)
        pad = cfg.margin * (hi - lo).max()
        lo, hi = lo - pad, hi + pad
        if cfg.ground:
            lo[2] = 0.0
    voxel = float(cfg.voxel) if cfg.voxel is not None else float((hi - lo).max()) / cfg.grid
    if cfg.ground and cfg.bounds is None:
        lo[2] = -(cfg.trunc_voxels + 2.0) * voxel  # a few voxels of ground slab
    t0 = time.perf_counter()
    vol = fuse_tsdf(depths, alphas, w2c, K, lo, hi, voxel, cfg.trunc_voxels, cfg.alpha_min, grid_from_scene=rigid,
                    pixel_weights=cosmap ** cfg.incidence_power if cfg.incidence_power else None)
    timings["tsdf"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mesh = marching_cubes(vol.tsdf, vol.lo, voxel)
    timings["marching_cubes"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cut = cfg.ground_cut_voxels * voxel if cfg.ground else None
    parts_full = [marching_cubes(f, lo_, voxel) for f, lo_ in object_fields(vol, cut, cfg.min_component_voxels,
                                                                             cfg.max_parts)]
    parts_full = [p for p in parts_full if len(p.faces)]
    timings["objects"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts, decimated = [], True
    for p in parts_full:
        d, ok = decimate(p, cfg.max_faces)
        parts.append(d)
        decimated &= ok
    timings["decimate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hulls: list[TriMesh] = []
    hull_part: list[int] = []
    if cfg.decompose != "none":
        for i, p in enumerate(parts):
            hs = decompose(p, cfg)
            hulls += hs
            hull_part += [i] * len(hs)
    timings["decompose"] = time.perf_counter() - t0

    S = np.diag([scale, scale, scale, 1.0])
    sim_from_scene = S @ rigid
    to_sim = S.copy()  # grid-frame (scene units) -> metres
    geom = CollisionGeometry(
        mesh=mesh.transformed(to_sim), parts=[p.transformed(to_sim) for p in parts],
        hulls=[h.transformed(to_sim) for h in hulls], hull_part=np.asarray(hull_part, np.int64),
        ground=ground if cfg.ground else None, sim_from_scene=sim_from_scene, scale=scale, voxel=voxel * scale,
        timings=timings, config=_config_dict(cfg))
    geom.stats = {
        "views": int(n), "grid": list(vol.shape), "voxel_m": voxel * scale,
        "bounds_m": [(lo * scale).tolist(), (vol.lo * scale + np.array(vol.shape) * voxel * scale).tolist()],
        "solid_fraction": float((vol.tsdf < 0).mean()), "observed_fraction": float((vol.weight > 0).mean()),
        "mesh_faces": int(len(mesh.faces)), "parts": len(parts), "part_faces": [int(len(p.faces)) for p in parts],
        "hulls": len(hulls), "decimated": bool(decimated),
        "ground": None if not cfg.ground else {
            "detected": ground.detected, "inlier_fraction": ground.inlier_fraction,
            "normal_scene": ground.normal.tolist(), "offset_scene": ground.offset},
        "scale_m_per_unit": scale,
    }
    return geom


def _config_dict(cfg: CollisionConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["bounds"] = None if cfg.bounds is None else [list(map(float, b)) for b in cfg.bounds]
    return d


def build_collision(gaussians: Any, cameras: Any, cfg: CollisionConfig | None = None) -> CollisionGeometry:
    """Collision geometry of a Gaussian scene seen by ``cameras`` (``lyra.cameras.Cameras``); see the module doc."""
    cfg = cfg or CollisionConfig()
    cfg.validate()
    if len(gaussians) == 0:
        raise SimError("the scene has no Gaussians")
    if len(cameras) == 0:
        raise SimError("no cameras to fuse depth from")
    t0 = time.perf_counter()
    views = select_views(cameras, cfg.max_views, cfg.max_width)
    if cfg.depth == "median":
        from lyra.sim.depth import render_median_depth

        depth, alpha = render_median_depth(gaussians, views)
    else:
        depth, alpha = render_depth(gaussians, views)
    timings = {"render": time.perf_counter() - t0}
    w2c, K = _camera_arrays(views)
    # the ground from the splat centres: rendered depth of splats seen at a grazing angle stands ~ one splat size
    # in front of the surface, their centres do not
    g = gaussians.detach().to("cpu")
    centres = g.means[g.opacities >= 0.5].double().numpy()
    geom = collision_from_depth(depth, alpha, w2c, K, cfg, timings, ground_points=centres)
    geom.stats["render_size"] = [views.height, views.width]
    return geom


# ---------------------------------------------------------------------------------------------- cache and files
def cache_key(gaussians: Any, cameras: Any, cfg: CollisionConfig) -> str:
    """sha256 (hex, 24 chars) of the Gaussians' geometry, the cameras and the options."""
    import torch

    h = hashlib.sha256(f"lyra-sim-collision-v{CACHE_VERSION}".encode())
    g = gaussians.detach().to("cpu", torch.float32)
    for t in (g.means, g.quats, g.scales, g.opacities, cameras.w2c, cameras.K):
        h.update(np.ascontiguousarray(t.detach().cpu().float().numpy()).tobytes())
    h.update(f"{cameras.height}x{cameras.width}".encode())
    h.update(json.dumps(_config_dict(cfg), sort_keys=True).encode())
    return h.hexdigest()[:24]


def default_cache_dir() -> Path:
    """``$LYRA_SIM_CACHE``, else ``$XDG_CACHE_HOME/lyra/sim`` (``~/.cache/lyra/sim``)."""
    if os.environ.get("LYRA_SIM_CACHE"):
        return Path(os.environ["LYRA_SIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lyra" / "sim"


def build_collision_cached(gaussians: Any, cameras: Any, cfg: CollisionConfig | None = None,
                           cache_dir: str | os.PathLike | None = None) -> tuple[CollisionGeometry, bool]:
    """(geometry, whether it came from the cache): :func:`build_collision` cached per scene + cameras + options."""
    cfg = cfg or CollisionConfig()
    cfg.validate()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / f"collision-{cache_key(gaussians, cameras, cfg)}.npz"
    if path.is_file():
        try:
            return load_collision(path), True
        except Exception:  # noqa: BLE001 - a torn or old cache entry is rebuilt
            pass
    geom = build_collision(gaussians, cameras, cfg)
    root.mkdir(parents=True, exist_ok=True)
    save_collision_npz(path, geom)
    return geom, False


def _pack(meshes: list[TriMesh], prefix: str) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_vertices": np.concatenate([m.vertices for m in meshes]) if meshes else np.zeros((0, 3)),
        f"{prefix}_faces": np.concatenate([m.faces for m in meshes]) if meshes else np.zeros((0, 3), np.int64),
        f"{prefix}_nv": np.array([len(m.vertices) for m in meshes], np.int64),
        f"{prefix}_nf": np.array([len(m.faces) for m in meshes], np.int64),
    }


def _unpack(z: Any, prefix: str) -> list[TriMesh]:
    v, f = z[f"{prefix}_vertices"], z[f"{prefix}_faces"]
    out, iv, jf = [], 0, 0
    for nv, nf in zip(z[f"{prefix}_nv"].tolist(), z[f"{prefix}_nf"].tolist()):
        out.append(TriMesh(v[iv:iv + nv].astype(np.float64), f[jf:jf + nf].astype(np.int64)))
        iv, jf = iv + nv, jf + nf
    return out


def save_collision_npz(path: str | os.PathLike, geom: CollisionGeometry) -> Path:
    """Write everything in ``geom`` to one .npz (atomically); :func:`load_collision` reads it back."""
    from lyra.utils.files import atomic_path

    path = Path(path)
    meta = {"stats": geom.stats, "timings": geom.timings, "config": geom.config, "version": CACHE_VERSION}
    arrays: dict[str, np.ndarray] = {
        **_pack([geom.mesh], "mesh"), **_pack(geom.parts, "parts"), **_pack(geom.hulls, "hulls"),
        "hull_part": geom.hull_part, "sim_from_scene": geom.sim_from_scene,
        "scale": np.float64(geom.scale), "voxel": np.float64(geom.voxel),
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    if geom.ground is not None:
        arrays.update(ground_normal=geom.ground.normal, ground_offset=np.float64(geom.ground.offset),
                      ground_detected=np.bool_(geom.ground.detected),
                      ground_inlier_fraction=np.float64(geom.ground.inlier_fraction))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_collision(path: str | os.PathLike) -> CollisionGeometry:
    """Read a collision .npz written by :func:`save_collision_npz` (``lyra mesh`` writes ``collision.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "collision.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            ground = None
            if "ground_normal" in z:
                ground = Ground(z["ground_normal"].astype(np.float64), float(z["ground_offset"]),
                                bool(z["ground_detected"]), float(z["ground_inlier_fraction"]))
            return CollisionGeometry(
                mesh=_unpack(z, "mesh")[0], parts=_unpack(z, "parts"), hulls=_unpack(z, "hulls"),
                hull_part=z["hull_part"].astype(np.int64), ground=ground,
                sim_from_scene=z["sim_from_scene"].astype(np.float64), scale=float(z["scale"]),
                voxel=float(z["voxel"]), stats=meta["stats"], timings=meta["timings"], config=meta["config"])
    except (OSError, KeyError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise SimError(f"{path}: not a collision file written by lyra mesh ({exc})") from exc


def write_collision_dir(out: str | os.PathLike, geom: CollisionGeometry, mesh_format: str = "ply",
                        extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``mesh.<fmt>`` (fused surface), ``objects.<fmt>`` (decimated parts), ``hulls/hull_NNN.obj``,
    ``collision.npz`` and ``collision.json`` (frame, ground, counts, timings) into ``out``; returns the paths."""
    import trimesh

    out = Path(out)
    (out / "hulls").mkdir(parents=True, exist_ok=True)
    for old in (out / "hulls").glob("hull_*.obj"):
        old.unlink()
    paths: dict[str, Path] = {}

    def export(m: TriMesh, p: Path) -> None:
        trimesh.Trimesh(m.vertices, m.faces, process=False).export(p)

    paths["mesh"] = out / f"mesh.{mesh_format}"
    export(geom.mesh, paths["mesh"])
    if geom.parts:
        allp = _pack(geom.parts, "p")
        offs = np.repeat(np.cumsum(np.r_[0, allp["p_nv"][:-1]]), allp["p_nf"])
        paths["objects"] = out / f"objects.{mesh_format}"
        export(TriMesh(allp["p_vertices"], allp["p_faces"] + offs[:, None]), paths["objects"])
    for i, h in enumerate(geom.hulls):
        export(h, out / "hulls" / f"hull_{i:03d}.obj")
    paths["hulls"] = out / "hulls"
    paths["npz"] = save_collision_npz(out / "collision.npz", geom)
    info = {
        "frame": "sim: metres, +z up, ground plane z = 0; sim = sim_from_scene @ scene (homogeneous)",
        "sim_from_scene": geom.sim_from_scene.tolist(), "scale_m_per_unit": geom.scale, "voxel_m": geom.voxel,
        "hull_part": geom.hull_part.tolist(), "stats": geom.stats, "timings": geom.timings, "config": geom.config,
        **(extra or {}),
    }
    paths["json"] = out / "collision.json"
    paths["json"].write_text(json.dumps(info, indent=2) + "\n")
    return paths
