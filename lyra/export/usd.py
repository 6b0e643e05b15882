"""USD / USDZ export of Gaussian sets with OpenUSD's ``UsdVol.ParticleField3DGaussianSplat`` (usd-core >= 26.03).

Stage layout (what Isaac Sim / Omniverse and other OpenUSD 26 consumers read)::

    #usda 1.0  (defaultPrim = "Scene", upAxis = "Y" (or "Z"), metersPerUnit = 1.0)
    def Xform "Scene"                          xformOp:rotateX = 180 (Y-up) or -90 (Z-up)
        def ParticleField3DGaussianSplat "Gaussians"
            point3f[] positions                [N]    means, scene units (OpenCV frame, see below)
            quatf[]   orientations             [N]    unit quaternions; USDA text order (w, x, y, z)
            float3[]  scales                   [N]    linear standard deviations (the schema's kernel has
                                                      sigma 1; PLY's log scales are exp'd)
            float[]   opacities                [N]    activated, in [0, 1]
            uniform int radiance:sphericalHarmonicsDegree   0 or 3
            float3[]  radiance:sphericalHarmonicsCoefficients [N * K]  K = (degree+1)^2 per Gaussian,
                                                      contiguous per Gaussian, band 0 first (3DGS order),
                                                      RGB innermost; DC = (rgb - 0.5) / C0 as in 3DGS
            float3[]  extent                   [2]    AABB of the 3-sigma ellipsoids (local space)
            color3f[] primvars:displayColor    [N]    DC colour clamped to [0, 1] (fallback display)
        def Scope "Cameras"                     only when cameras are given
            def Camera "cam_00000" ...          USD cameras (look down -Z, +Y up) matching our w2c and K
        def Xform "Collision"                   only with ``collision`` (lyra.sim.CollisionGeometry); undoes
                                                the ground alignment: children are in the gravity-aligned frame
            def Plane "Ground"                  axis Z at z = 0; PhysicsCollisionAPI (static), purpose guide
            def Xform "Objects"
                def Mesh "object_000" ...       one closed mesh per object; PhysicsCollisionAPI +
                                                PhysicsMeshCollisionAPI (approximation convexDecomposition)
            (or def Xform "Hulls" / Mesh "hull_000" ...: our CoACD hulls, approximation convexHull)
        def PhysicsScene "PhysicsScene"         gravity along the stage's -up, 9.81 m/s^2 in stage units

Axis convention: our scenes are OpenCV (x right, y down, z forward). The Gaussian data is written
unchanged in that frame, and the parent ``Scene`` Xform rotates it into the stage's right-handed
up-axis frame: 180 degrees about x for Y-up (x right, y up, z towards the viewer: OpenCV's -y is up
and the first camera looks down -Z, as a USD camera does), -90 degrees about x for Z-up (x right,
y forward, z up). Keeping the data untouched keeps the export lossless (no SH re-rotation) and the
rotation explicit; consumers that honour prim transforms (all Hydra renderers) place the scene
upright. Scene units are those of the reconstruction (``metersPerUnit`` defaults to 1).

With collision geometry (``lyra mesh``), the ``Scene`` Xform carries the fitted ground alignment instead of the
fixed rotation (one matrix op: gravity-aligned frame with the ground at 0, then the stage's up axis), and
``metersPerUnit`` is the collision geometry's scale (metres per scene unit), so splats and colliders share scene
units and Isaac Sim / PhysX see the ground level and gravity along the stage's down axis.

4D sequences (:func:`save_usd_sequence`, experimental): the same layout without collision, every attribute of
/Scene/Gaussians except the uniform SH degree authored only as time samples (no default value), one time code per
frame; array lengths may differ between samples (usd-core writes and reads them back per sample; between samples
of different lengths USD holds the earlier one, between samples of equal length it interpolates linearly unless the
player uses held interpolation, and splats of different frames do not correspond). The stage's start/end time
codes span the samples; ``customLayerData["lyra:sequence"]`` records times, time codes, fps and units.

Note on quaternions in Python: ``Gf.Quatf`` stores (i, j, k, real), so ``Vt.QuatfArray`` <-> numpy
arrays are (x, y, z, w); the conversion is done here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from lyra.cameras import Cameras
from lyra.errors import InputError
from lyra.gaussians import SH_C0, GaussianError, Gaussians
from lyra.utils.files import atomic_path

USD_FORMATS = ("usdz", "usda", "usdc")
UP_AXIS_ROTATE_X = {"Y": 180.0, "Z": -90.0}  # degrees about x taking OpenCV axes to the stage frame
SCENE_PRIM = "/Scene"
GAUSSIANS_PRIM = "/Scene/Gaussians"
CAMERAS_PRIM = "/Scene/Cameras"
COLLISION_PRIM = "/Scene/Collision"
PHYSICS_SCENE_PRIM = "/Scene/PhysicsScene"
GRAVITY = 9.81  # m/s^2
# stage axes from the gravity-aligned (z-up) frame: Z-up keeps it, Y-up maps (x, y, z) -> (x, z, -y)
STAGE_FROM_ZUP = {"Z": np.eye(3), "Y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])}
CAMERA_FOCAL_LENGTH = 50.0  # USD camera focal length (tenths of a scene unit); apertures follow from K
EXTENT_SIGMAS = 3.0


def _import_pxr():
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdUtils, UsdVol, Vt
    except ImportError as exc:
        raise ImportError("USD export needs usd-core >= 26.03: pip install 'usd-core>=26.3'") from exc
    if not hasattr(UsdVol, "ParticleField3DGaussianSplat"):
        raise ImportError("USD export needs UsdVol.ParticleField3DGaussianSplat (usd-core >= 26.03): "
                          "pip install -U 'usd-core>=26.3'")
    return Gf, Sdf, Usd, UsdGeom, UsdUtils, UsdVol, Vt


def _sh_for_export(g: Gaussians, sh_degree: int | None) -> np.ndarray:
    """[N, K, 3] float32 SH coefficients for degree 0 or 3 (None: 0 stays 0, 1..3 become 3, zero-padded)."""
    native = g.sh_degree or 0
    deg = (0 if native == 0 else 3) if sh_degree is None else sh_degree
    if deg not in (0, 3):
        raise GaussianError(f"USD export writes SH degree 0 or 3, not {deg}")
    K = (deg + 1) ** 2
    if g.sh is not None:
        src = g.sh.detach().cpu().double()
    else:
        src = ((g.colors.detach().cpu().double() - 0.5) / SH_C0)[:, None]
    out = np.zeros((len(g), K, 3), dtype=np.float32)
    k = min(K, src.shape[1])
    out[:, :k] = src[:, :k].numpy()
    return out


def gaussian_extent(g: Gaussians, sigmas: float = EXTENT_SIGMAS) -> np.ndarray:
    """[2, 3] axis-aligned bounds of the ``sigmas``-sigma ellipsoids (min row, max row), scene units."""
    from lyra.gaussians import covariances

    if len(g) == 0:
        return np.zeros((2, 3), dtype=np.float32)
    cov = covariances(g.detach().to("cpu", torch.float64))
    half = sigmas * torch.diagonal(cov, dim1=-2, dim2=-1).clamp_min(0).sqrt()
    m = g.means.detach().to("cpu", torch.float64)
    return torch.stack(((m - half).amin(0), (m + half).amax(0))).numpy().astype(np.float32)


def camera_usd_params(cameras: Cameras) -> list[dict]:
    """Per camera: ``transform`` [4, 4] camera-to-parent in column-vector convention (USD camera axes:
    -Z forward, +Y up) and ``focalLength``, ``horizontalAperture``, ``verticalAperture``,
    ``horizontalApertureOffset``, ``verticalApertureOffset`` reproducing the pixel intrinsics K."""
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
    c2w = cameras.c2w.detach().to("cpu", torch.float64) @ flip
    K = cameras.K.detach().to("cpu", torch.float64)
    W, H, f = cameras.width, cameras.height, CAMERA_FOCAL_LENGTH
    out = []
    for i in range(len(cameras)):
        fx, fy, cx, cy = (float(K[i, 0, 0]), float(K[i, 1, 1]), float(K[i, 0, 2]), float(K[i, 1, 2]))
        out.append({
            "transform": c2w[i].numpy(),
            "focalLength": f,
            "horizontalAperture": f * W / fx,
            "verticalAperture": f * H / fy,
            # window centre relative to the optical axis (USD +y is image-up, OpenCV v is image-down)
            "horizontalApertureOffset": f * (W / 2 - cx) / fx,
            "verticalApertureOffset": f * (cy - H / 2) / fy,
        })
    return out


def _matrix4d(Gf, T: np.ndarray):
    """Gf.Matrix4d of a column-vector 4x4 (USD multiplies row vectors: store the transpose)."""
    return Gf.Matrix4d(np.asarray(T, dtype=np.float64).T.tolist())


def _ground_alignment(collision) -> np.ndarray:
    """[4, 4] rigid gravity-aligned-from-scene transform in scene units (the collision frame without its scale)."""
    T = np.asarray(collision.sim_from_scene, dtype=np.float64).copy()
    T[:3, :] /= float(collision.scale)
    return T


def _author_collision(stage, collision, hulls: bool) -> None:
    """/Scene/Collision: ground plane + object meshes (or hulls) with UsdPhysics collision APIs (static)."""
    from pxr import Gf, UsdGeom, UsdPhysics, Vt

    group = UsdGeom.Xform.Define(stage, COLLISION_PRIM)
    # /Scene applies stage-axes @ alignment; undoing the alignment leaves children in the gravity-aligned frame
    group.AddTransformOp().Set(_matrix4d(Gf, np.linalg.inv(_ground_alignment(collision))))
    s = float(collision.scale)
    lo, hi = (np.asarray(b, dtype=np.float64) / s for b in collision.stats.get("bounds_m", [[-1] * 3, [1] * 3]))
    if collision.ground is not None:
        plane = UsdGeom.Plane.Define(stage, f"{COLLISION_PRIM}/Ground")
        plane.CreateAxisAttr(UsdGeom.Tokens.z)
        plane.CreateWidthAttr(float(2 * max(abs(lo[0]), abs(hi[0]), 1e-3)))
        plane.CreateLengthAttr(float(2 * max(abs(lo[1]), abs(hi[1]), 1e-3)))
        plane.CreatePurposeAttr(UsdGeom.Tokens.guide)
        UsdPhysics.CollisionAPI.Apply(plane.GetPrim())
    meshes, name, approx = ((collision.hulls, "Hulls", UsdPhysics.Tokens.convexHull) if hulls else
                            (collision.parts, "Objects", UsdPhysics.Tokens.convexDecomposition))
    UsdGeom.Xform.Define(stage, f"{COLLISION_PRIM}/{name}")
    for i, m in enumerate(meshes):
        mesh = UsdGeom.Mesh.Define(stage, f"{COLLISION_PRIM}/{name}/{name.lower()[:-1]}_{i:03d}")
        v = np.ascontiguousarray(m.vertices / s, dtype=np.float32)
        mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(v))
        mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(m.faces), 3, dtype=np.int32)))
        mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.ascontiguousarray(m.faces.ravel(), np.int32)))
        mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(np.stack([v.min(0), v.max(0)])))
        mesh.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
        mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        mesh.CreatePurposeAttr(UsdGeom.Tokens.guide)
        UsdPhysics.CollisionAPI.Apply(mesh.GetPrim())
        UsdPhysics.MeshCollisionAPI.Apply(mesh.GetPrim()).CreateApproximationAttr(approx)


def _author_root(stage, up_axis: str, meters_per_unit: float, collision=None) -> None:
    """Stage up axis and metersPerUnit, and the default prim /Scene rotating our OpenCV data into the stage's axes
    (with ``collision``: its ground alignment, see :func:`build_stage`)."""
    from pxr import Gf, UsdGeom

    if up_axis not in UP_AXIS_ROTATE_X:
        raise InputError(f"up_axis must be one of {sorted(UP_AXIS_ROTATE_X)}, got {up_axis!r}")
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y if up_axis == "Y" else UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, float(meters_per_unit))
    root = UsdGeom.Xform.Define(stage, SCENE_PRIM)
    if collision is None:
        root.AddRotateXOp().Set(UP_AXIS_ROTATE_X[up_axis])
    else:
        root_T = np.eye(4)
        root_T[:3, :3] = STAGE_FROM_ZUP[up_axis]
        root_T = root_T @ _ground_alignment(collision)
        root.AddTransformOp().Set(_matrix4d(Gf, root_T))
    stage.SetDefaultPrim(root.GetPrim())
    stage.GetRootLayer().customLayerData = {"lyra:sourceFrame": "OpenCV (x right, y down, z forward)"}


def _author_sh_layout(gs, K: int) -> None:
    """The uniform SH degree (K = (degree+1)^2 coefficients per Gaussian) and the coefficients' array layout."""
    from pxr import UsdGeom

    gs.CreateRadianceSphericalHarmonicsDegreeAttr(int(round(K**0.5)) - 1)
    coeffs = gs.CreateRadianceSphericalHarmonicsCoefficientsAttr()
    coeffs.SetMetadata("elementSize", K)  # as the NVIDIA converter writes; readers may also derive it
    coeffs.SetMetadata("interpolation", UsdGeom.Tokens.vertex)
    gs.CreateDisplayColorPrimvar(UsdGeom.Tokens.vertex)


def _author_splats(gs, g: Gaussians, sh: np.ndarray, time) -> None:
    """Set the per-Gaussian attributes of ``gs`` (positions, orientations, scales, opacities, SH [N, K, 3],
    extent, displayColor) to ``g``'s values at ``time`` (a ``Usd.TimeCode``; Default: not animated)."""
    from pxr import Vt

    cpu = g.detach().to("cpu", torch.float32)
    q = torch.nn.functional.normalize(cpu.quats, dim=-1)
    n, K = sh.shape[:2]
    gs.CreatePositionsAttr().Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(cpu.means.numpy())), time)
    gs.CreateOrientationsAttr().Set(Vt.QuatfArray.FromNumpy(np.ascontiguousarray(q[:, [1, 2, 3, 0]].numpy())), time)
    gs.CreateScalesAttr().Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(cpu.scales.numpy())), time)
    opacities = np.ascontiguousarray(cpu.opacities.clamp(0, 1).numpy())
    gs.CreateOpacitiesAttr().Set(Vt.FloatArray.FromNumpy(opacities), time)
    gs.CreateRadianceSphericalHarmonicsCoefficientsAttr().Set(Vt.Vec3fArray.FromNumpy(sh.reshape(n * K, 3)), time)
    gs.CreateExtentAttr().Set(Vt.Vec3fArray.FromNumpy(gaussian_extent(g)), time)
    dc = np.clip(0.5 + SH_C0 * sh[:, 0], 0.0, 1.0).astype(np.float32)
    gs.GetDisplayColorPrimvar().Set(Vt.Vec3fArray.FromNumpy(dc), time)


def _author_cameras(stage, cameras: Cameras, near_far: tuple[float, float]) -> None:
    """/Scene/Cameras/cam_<i>: one static USD camera per trajectory camera (see :func:`camera_usd_params`)."""
    from pxr import Gf, UsdGeom

    UsdGeom.Scope.Define(stage, CAMERAS_PRIM)
    for i, p in enumerate(camera_usd_params(cameras)):
        cam = UsdGeom.Camera.Define(stage, f"{CAMERAS_PRIM}/cam_{i:05d}")
        cam.AddTransformOp().Set(Gf.Matrix4d(p["transform"].T.tolist()))  # USD: row vectors
        cam.CreateProjectionAttr(UsdGeom.Tokens.perspective)
        for name in ("focalLength", "horizontalAperture", "verticalAperture",
                     "horizontalApertureOffset", "verticalApertureOffset"):
            getattr(cam, f"Create{name[0].upper()}{name[1:]}Attr")(float(p[name]))
        cam.CreateClippingRangeAttr(Gf.Vec2f(*near_far))


def build_stage(
    stage,
    g: Gaussians,
    cameras: Cameras | None = None,
    sh_degree: int | None = None,
    up_axis: str = "Y",
    meters_per_unit: float = 1.0,
    near_far: tuple[float, float] = (0.01, 1000.0),
    collision=None,
    collision_hulls: bool = False,
    physics_scene: bool | None = None,
) -> None:
    """Author the scene (see module docstring) into an open ``Usd.Stage``.

    Args:
        collision: a ``lyra.sim.CollisionGeometry``: adds /Scene/Collision, aligns /Scene to its ground and sets
            ``metersPerUnit`` to its scale (``meters_per_unit`` must then be left at 1 or equal it).
        collision_hulls: author the precomputed convex hulls (approximation convexHull) instead of one mesh per
            object with approximation convexDecomposition.
        physics_scene: add /Scene/PhysicsScene (default: when ``collision`` is given).
    """
    Gf, _, Usd, _, _, UsdVol, _ = _import_pxr()
    if up_axis not in UP_AXIS_ROTATE_X:
        raise InputError(f"up_axis must be one of {sorted(UP_AXIS_ROTATE_X)}, got {up_axis!r}")
    g.validate(check_values=True)
    if g.times is not None:
        raise GaussianError("USD export of 4D sets (with times) is not supported; export a static set")
    if collision is not None:
        if meters_per_unit not in (1.0, float(collision.scale)):
            raise InputError(f"meters_per_unit {meters_per_unit} contradicts the collision geometry's scale "
                             f"{collision.scale} (metres per scene unit); leave it at 1")
        meters_per_unit = float(collision.scale)
    if physics_scene is None:
        physics_scene = collision is not None

    _author_root(stage, up_axis, meters_per_unit, collision)
    gs = UsdVol.ParticleField3DGaussianSplat.Define(stage, GAUSSIANS_PRIM)
    sh = _sh_for_export(g, sh_degree)
    _author_sh_layout(gs, sh.shape[1])
    _author_splats(gs, g, sh, Usd.TimeCode.Default())
    if cameras is not None and len(cameras):
        _author_cameras(stage, cameras, near_far)

    if collision is not None:
        _author_collision(stage, collision, collision_hulls)
    if physics_scene:
        from pxr import UsdPhysics

        ps = UsdPhysics.Scene.Define(stage, PHYSICS_SCENE_PRIM)
        ps.CreateGravityDirectionAttr(Gf.Vec3f(0.0, -1.0, 0.0) if up_axis == "Y" else Gf.Vec3f(0.0, 0.0, -1.0))
        ps.CreateGravityMagnitudeAttr(float(GRAVITY / meters_per_unit))


def save_usd(
    path: str | os.PathLike,
    g: Gaussians,
    cameras: Cameras | None = None,
    sh_degree: int | None = None,
    up_axis: str = "Y",
    meters_per_unit: float = 1.0,
    collision=None,
    collision_hulls: bool = False,
    physics_scene: bool | None = None,
) -> Path:
    """Write ``g`` (and optional trajectory ``cameras``) as .usda, .usdc or .usdz (chosen by extension).

    A .usdz is a package of one .usdc layer (``UsdUtils.CreateNewUsdzPackage``). Written atomically:
    built in a temporary folder beside ``path``, then renamed.

    Args:
        sh_degree: 0 or 3; None keeps degree 0 as 0 and pads degrees 1..2 to 3.
        up_axis: "Y" (default, right-handed Y-up) or "Z" (right-handed Z-up).
        meters_per_unit: stage ``metersPerUnit`` (scene units are the reconstruction's).
        collision, collision_hulls, physics_scene: collision geometry and physics (see :func:`build_stage`).
    """
    return _save_stage(path, lambda stage: build_stage(
        stage, g, cameras, sh_degree=sh_degree, up_axis=up_axis, meters_per_unit=meters_per_unit,
        collision=collision, collision_hulls=collision_hulls, physics_scene=physics_scene))


def _save_stage(path: str | os.PathLike, author: Callable[[object], None]) -> Path:
    """Create a stage, ``author(stage)`` it and save it atomically as ``path`` (.usda, .usdc or .usdz)."""
    _, _, Usd, _, UsdUtils, _, _ = _import_pxr()
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext not in USD_FORMATS:
        raise InputError(f"{path}: USD export needs a .usdz, .usda or .usdc file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            layer = tmpdir / ("scene.usdc" if ext == "usdz" else f"scene.{ext}")
            stage = Usd.Stage.CreateNew(str(layer))
            author(stage)
            stage.GetRootLayer().Save()
            del stage
            out = layer
            if ext == "usdz":
                out = tmpdir / "scene.usdz"
                if not UsdUtils.CreateNewUsdzPackage(str(layer), str(out)):
                    raise RuntimeError(f"{path}: UsdUtils.CreateNewUsdzPackage failed")
            os.replace(out, tmp)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def _layer_dict(d: dict) -> dict:
    """``d`` with list values as Vt arrays (floats: DoubleArray, strings: StringArray), as layer metadata needs."""
    from pxr import Vt

    out = {}
    for k, v in d.items():
        if isinstance(v, list | tuple):
            v = Vt.StringArray([str(x) for x in v]) if v and isinstance(v[0], str) else Vt.DoubleArray(list(v))
        out[k] = v
    return out


def build_sequence_stage(
    stage,
    scenes: Sequence[Gaussians],
    time_codes: Sequence[float],
    cameras: Cameras | None = None,
    sh_degree: int | None = None,
    up_axis: str = "Y",
    meters_per_unit: float = 1.0,
    time_codes_per_second: float = 24.0,
    custom: dict | None = None,
) -> None:
    """Author a 4D sequence into an open ``Usd.Stage``: the static layout (module docstring) with every per-Gaussian
    attribute of /Scene/Gaussians time-sampled, ``scenes[i]`` at time code ``time_codes[i]`` (counts may differ).

    The stage's start/end time codes are the first/last of ``time_codes``; ``timeCodesPerSecond`` and
    ``framesPerSecond`` are ``time_codes_per_second``. SH degree (uniform, not animated): ``sh_degree``, or 0 when
    every frame is degree 0 and 3 otherwise. ``cameras`` are static camera prims; ``custom`` goes into the layer's
    customLayerData (under ``lyra:sequence``).
    """
    _, _, Usd, _, _, UsdVol, _ = _import_pxr()
    codes = [float(t) for t in time_codes]
    if not scenes or len(scenes) != len(codes):
        raise InputError(f"a USD sequence needs one time code per scene, got {len(codes)} for {len(scenes)} scenes")
    if not all(np.isfinite(codes)) or any(b <= a for a, b in zip(codes, codes[1:])):
        raise InputError(f"USD time codes must be finite and increase strictly, got {codes}")
    if not time_codes_per_second > 0:
        raise InputError(f"timeCodesPerSecond must be > 0, got {time_codes_per_second}")
    for g in scenes:
        g.validate(check_values=True)
        if g.times is not None:
            raise GaussianError("a USD sequence takes one static set per time (without per-Gaussian times)")
    if sh_degree is None:
        sh_degree = 3 if any(g.sh_degree for g in scenes) else 0

    _author_root(stage, up_axis, meters_per_unit)
    data = dict(stage.GetRootLayer().customLayerData)
    data["lyra:sequence"] = _layer_dict(custom or {})
    stage.GetRootLayer().customLayerData = data
    gs = UsdVol.ParticleField3DGaussianSplat.Define(stage, GAUSSIANS_PRIM)
    _author_sh_layout(gs, (sh_degree + 1) ** 2)
    for g, code in zip(scenes, codes):
        _author_splats(gs, g, _sh_for_export(g, sh_degree), Usd.TimeCode(code))
    if cameras is not None and len(cameras):
        _author_cameras(stage, cameras, (0.01, 1000.0))
    stage.SetStartTimeCode(codes[0])
    stage.SetEndTimeCode(codes[-1])
    stage.SetTimeCodesPerSecond(float(time_codes_per_second))
    stage.SetFramesPerSecond(float(time_codes_per_second))


def save_usd_sequence(path: str | os.PathLike, scenes: Sequence[Gaussians], time_codes: Sequence[float],
                      **options) -> Path:
    """Write a time-sampled 4D sequence (see :func:`build_sequence_stage`, which takes ``options``) as .usda, .usdc
    or .usdz, atomically like :func:`save_usd`."""
    return _save_stage(path, lambda stage: build_sequence_stage(stage, scenes, time_codes, **options))
