"""Ground plane and up axis: RANSAC on scene points, and the gravity-aligned frame built from it.

Our scenes are OpenCV-framed (world up is -y for the procedural worlds and for Lyra outputs whose first
camera is upright). The *sim frame* puts the ground at z = 0 with +z up, x along the first camera's x
axis, and the origin below the first camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lyra.sim.errors import SimError

UP_AXES = ("auto", "-y", "y", "z", "-z", "x", "-x")
_AXIS = {"x": 0, "y": 1, "z": 2}


@dataclass
class Ground:
    """A ground plane in scene coordinates: height above ground = ``normal @ p + offset``.

    Attributes:
        normal: [3] unit up vector (scene coordinates).
        offset: plane offset (scene units).
        detected: False when no plane passed the tests and the ground is the lowest points' height instead.
        inlier_fraction: share of the sampled points within the RANSAC threshold of the plane.
    """

    normal: np.ndarray
    offset: float
    detected: bool
    inlier_fraction: float

    def height(self, points: np.ndarray) -> np.ndarray:
        """[P] signed height above the ground of points [P, 3] (scene units)."""
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset


def axis_vector(up: str) -> np.ndarray:
    """[3] unit vector of an axis name such as "-y"."""
    if up not in UP_AXES or up == "auto":
        raise SimError(f"up axis must be one of {', '.join(UP_AXES[1:])} (or auto), got {up!r}")
    v = np.zeros(3)
    v[_AXIS[up[-1]]] = -1.0 if up.startswith("-") else 1.0
    return v


def camera_up(w2c: np.ndarray) -> np.ndarray:
    """[3] mean image-up direction (OpenCV -y) of cameras w2c [N, 4, 4], in world coordinates."""
    R = np.asarray(w2c, dtype=np.float64).reshape(-1, 4, 4)[:, :3, :3]
    u = -R[:, 1, :].sum(0)
    n = np.linalg.norm(u)
    return u / n if n > 0 else np.array([0.0, -1.0, 0.0])


def camera_centers(w2c: np.ndarray) -> np.ndarray:
    """[N, 3] camera centres of w2c [N, 4, 4]."""
    w2c = np.asarray(w2c, dtype=np.float64).reshape(-1, 4, 4)
    return -np.einsum("nji,nj->ni", w2c[:, :3, :3], w2c[:, :3, 3])


def _fit_plane(p: np.ndarray) -> tuple[np.ndarray, float]:
    c = p.mean(0)
    _, _, vt = np.linalg.svd(p - c, full_matrices=False)
    n = vt[-1]
    return n, float(-n @ c)


def detect_ground(
    points: np.ndarray,
    cam_centers: np.ndarray,
    up_prior: np.ndarray,
    max_angle_deg: float = 30.0,
    threshold: float | None = None,
    iterations: int = 400,
    min_inlier_fraction: float = 0.05,
    exact_up: bool = False,
    seed: int = 0,
    max_points: int = 30000,
) -> Ground:
    """The largest plane below the cameras whose normal is within ``max_angle_deg`` of ``up_prior``.

    Args:
        points: [P, 3] scene points (e.g. unprojected depth).
        cam_centers: [C, 3] camera centres; 90 % of them must be above the plane.
        up_prior: [3] expected up direction.
        threshold: inlier distance (scene units); default 1 % of the points' robust extent.
        exact_up: keep ``up_prior`` as the normal (an explicit --up) and fit only the offset.
    Returns:
        the ground; when no plane holds ``min_inlier_fraction`` of the points, an undetected ground
        with normal ``up_prior`` through the 1st percentile of the points' heights.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    prior = np.asarray(up_prior, dtype=np.float64)
    prior = prior / np.linalg.norm(prior)
    if len(pts) < 3:
        raise SimError("ground detection: the scene has fewer than 3 points")
    rng = np.random.default_rng(seed)
    if len(pts) > max_points:
        pts = pts[rng.choice(len(pts), max_points, replace=False)]
    if threshold is None:
        ext = np.percentile(pts, 95, axis=0) - np.percentile(pts, 5, axis=0)
        threshold = 0.01 * float(np.linalg.norm(ext)) + 1e-9
    cams = np.asarray(cam_centers, dtype=np.float64).reshape(-1, 3)
    cos_max = np.cos(np.radians(max_angle_deg))

    idx = rng.integers(0, len(pts), size=(iterations, 3))
    a, b, c = pts[idx[:, 0]], pts[idx[:, 1]], pts[idx[:, 2]]
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    good = norm > 1e-12
    n = n[good] / norm[good, None]
    a = a[good]
    n *= np.sign(n @ prior)[:, None] + (n @ prior == 0)[:, None]
    if exact_up:
        n = np.broadcast_to(prior, n.shape).copy()
    keep = (n @ prior) >= cos_max
    n, a = n[keep], a[keep]
    d = -(n * a).sum(1)
    best, best_count = None, 0
    for s in range(0, len(n), 64):
        h = pts @ n[s:s + 64].T + d[s:s + 64]  # [P, k]
        counts = (np.abs(h) < threshold).sum(0)
        above = ((cams @ n[s:s + 64].T + d[s:s + 64]) > threshold).mean(0) >= 0.9 if len(cams) else True
        counts = np.where(above, counts, 0)
        j = int(np.argmax(counts)) if len(counts) else 0
        if len(counts) and counts[j] > best_count:
            best, best_count = (n[s + j], d[s + j]), int(counts[j])
    if best is None or best_count < min_inlier_fraction * len(pts):
        off = -float(np.percentile(pts @ prior, 1))
        return Ground(prior, off, False, float(best_count) / len(pts))
    nb, db = best
    for _ in range(2):  # refine on the inliers
        inl = pts[np.abs(pts @ nb + db) < threshold]
        if exact_up:
            db = -float(np.median(inl @ nb))
        else:
            nf, dfit = _fit_plane(inl)
            if nf @ nb < 0:
                nf, dfit = -nf, -dfit
            nb, db = nf, dfit
    frac = float((np.abs(pts @ nb + db) < threshold).mean())
    return Ground(nb, float(db), True, frac)


def sim_frame(ground: Ground) -> np.ndarray:
    """[4, 4] rigid sim-from-scene transform: z = ground normal, ground at z = 0, x along the scene's x axis
    (made orthogonal to the normal; the scene's z axis if x is vertical), origin at the scene origin's foot point
    on the ground. For an OpenCV scene with up -y this is (x, y, z) -> (x, z, -y - ground offset)."""
    z = ground.normal / np.linalg.norm(ground.normal)
    x = np.array([1.0, 0.0, 0.0]) - z[0] * z
    if np.linalg.norm(x) < 1e-3:
        x = np.array([0.0, 0.0, 1.0]) - z[2] * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    origin = -ground.offset * z
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z])
    T[:3, 3] = -T[:3, :3] @ origin
    return T
