"""The humanoid: dm_control's suite ``humanoid.xml`` (Apache-2.0, vendored unmodified in ``assets/dm_control``),
attached to a scene's ``mujoco.MjSpec`` standing on the ground, and its motions.

The model: 17 bodies (a 27-DoF tree under a free joint), 21 torque motors (ctrl in [-1, 1] x gear N m), capsule
and sphere geoms, 40.8 kg, about 1.56 m tall standing. Its frame: +x forward (feet and arms point +x), +z up.

Motions (:data:`MOTIONS`):

- ``passive``: the unmodified model with zero controls: a ragdoll that falls from standing (joint springs and
  damping as in the file).
- ``scripted``: the motors become position servos (``MjsActuator.set_to_position``: kp = ``kp_per_gear`` x gear
  N m/rad, kv = ``kv_per_gear`` x gear N m s/rad, torque limited to ``strength`` x gear N m; the file's motors,
  gear 20-120 N m, are too weak to hold a standing pose) following a periodic pattern (:class:`SquatWave`):
  squats (hips, knees and ankles flex together, feet flat) and waves the arms. No balance controller: the pose
  keeps the centre of mass over the feet, so it stays standing on flat ground; pushed, it falls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lyra.sim.errors import SimError

HUMANOID_XML = Path(__file__).parent / "assets" / "dm_control" / "humanoid.xml"
ROBOTS = ("humanoid", "none")
MOTIONS = ("scripted", "passive")
PREFIX = "humanoid/"


@dataclass
class HumanoidConfig:
    """Placement and motion of the humanoid.

    Attributes:
        xy: (x, y) of the torso in the sim frame (metres).
        yaw_deg: heading of the humanoid's +x (forward) axis, degrees from +x towards +y.
        clearance: gap between its lowest point and the ground at the start (metres).
        motion: "scripted" or "passive" (see the module doc).
        kp_per_gear: servo stiffness per unit of the motor's gear (N m/rad per N m).
        kv_per_gear: servo damping per unit of gear (N m s/rad per N m).
        strength: servo torque limit in multiples of the motor's peak torque (gear x 1).
        period: seconds per squat of the scripted pattern (the arms wave twice as fast).
        squat: hip flexion at the bottom of the squat (radians; knees flex twice that).
        wave: shoulder swing amplitude (radians).
    """

    xy: tuple[float, float] = (0.0, 0.0)
    yaw_deg: float = 0.0
    clearance: float = 0.005
    motion: str = "scripted"
    kp_per_gear: float = 20.0
    kv_per_gear: float = 1.0
    strength: float = 3.0
    period: float = 2.0
    squat: float = 0.5
    wave: float = 0.8

    def validate(self) -> None:
        if self.motion not in MOTIONS:
            raise SimError(f"motion must be one of {', '.join(MOTIONS)}, got {self.motion!r}")
        if self.period <= 0 or self.kp_per_gear <= 0 or self.kv_per_gear < 0 or self.strength <= 0:
            raise SimError("humanoid: period, kp_per_gear and strength must be > 0, kv_per_gear >= 0")


def _mujoco():
    from lyra.sim.mjscene import _mujoco as load

    return load()


def lowest_point(model: Any, data: Any, geoms: np.ndarray | None = None) -> float:
    """Lowest world z of the geoms (all, or the ids ``geoms``) after ``mj_forward``: exact for spheres, capsules
    and boxes, the bounding sphere for other types (metres)."""
    mujoco = _mujoco()
    ids = np.arange(model.ngeom) if geoms is None else np.asarray(geoms)
    low = math.inf
    for g in ids:
        z = float(data.geom_xpos[g, 2])
        R = data.geom_xmat[g].reshape(3, 3)
        s = model.geom_size[g]
        t = model.geom_type[g]
        if t == mujoco.mjtGeom.mjGEOM_SPHERE:
            zl = z - s[0]
        elif t == mujoco.mjtGeom.mjGEOM_CAPSULE:
            zl = z - s[0] - s[1] * abs(R[2, 2])
        elif t == mujoco.mjtGeom.mjGEOM_BOX:
            zl = z - float(np.abs(R[2]) @ s)
        elif t == mujoco.mjtGeom.mjGEOM_PLANE:
            continue
        else:
            zl = z - float(model.geom_rbound[g])
        low = min(low, zl)
    return low


def humanoid_spec(cfg: HumanoidConfig | None = None, timestep: float = 0.005) -> Any:
    """The vendored humanoid as a ``mujoco.MjSpec``: its floor removed, its torso raised so that its lowest point
    is ``cfg.clearance`` above z = 0, servos in place of the motors for the scripted motion."""
    mujoco = _mujoco()
    cfg = cfg or HumanoidConfig()
    cfg.validate()
    if not HUMANOID_XML.is_file():
        raise SimError(f"{HUMANOID_XML}: the vendored humanoid model is missing (a broken install?)")
    h = mujoco.MjSpec.from_file(str(HUMANOID_XML))
    for g in list(h.worldbody.geoms):
        if g.type == mujoco.mjtGeom.mjGEOM_PLANE:
            h.delete(g)
    h.option.timestep = float(timestep)
    h.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    if cfg.motion == "scripted":
        for a in h.actuators:
            gear = float(a.gear[0])
            j = h.joint(a.target)
            a.set_to_position(kp=cfg.kp_per_gear * gear, kv=cfg.kv_per_gear * gear)
            a.gear[0] = 1.0
            a.ctrlrange = np.radians(np.asarray(j.range, np.float64))  # targets within the joint's range
            a.forcelimited = 1
            a.forcerange = [-cfg.strength * gear, cfg.strength * gear]
    torso = h.worldbody.bodies[0]
    m = h.compile()
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    torso.pos = [0.0, 0.0, float(torso.pos[2]) - lowest_point(m, d) + cfg.clearance]
    return h


def add_humanoid(spec: Any, cfg: HumanoidConfig | None = None) -> dict[str, Any]:
    """Attach the humanoid to ``spec`` (names prefixed ``humanoid/``) standing on z = 0 at ``cfg.xy`` facing
    ``cfg.yaw_deg``; returns {"prefix", "torso_start" [3] (metres), "height" (metres, standing)}."""
    cfg = cfg or HumanoidConfig()
    h = humanoid_spec(cfg, timestep=float(spec.option.timestep))
    spec.option.integrator = h.option.integrator
    h.visual.map.znear = spec.visual.map.znear  # the scene's (no attach conflict)
    for k in ("ambient", "diffuse", "specular"):  # the model's brighter headlight (dm_control's visual.xml)
        setattr(spec.visual.headlight, k, getattr(h.visual.headlight, k))
    yaw = math.radians(cfg.yaw_deg)
    frame = spec.worldbody.add_frame(pos=[float(cfg.xy[0]), float(cfg.xy[1]), 0.0],
                                     quat=[math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    z0 = float(h.worldbody.bodies[0].pos[2])
    spec.attach(h, prefix=PREFIX, frame=frame)
    return {"prefix": PREFIX, "torso_start": [float(cfg.xy[0]), float(cfg.xy[1]), z0], "height": z0 + 0.28}


class SquatWave:
    """The scripted pattern: joint targets (radians) of the humanoid's servos at time t.

    Squat depth a(t) = squat (1 - cos(2 pi t / period)) / 2: hips -a, knees -2a, ankles -a (feet stay flat);
    shoulders swing +-wave sin(4 pi t / period) in opposition, elbows bent 0.8 rad. Targets are clipped to the
    servos' control ranges (the joints' ranges).
    """

    def __init__(self, model: Any, cfg: HumanoidConfig, prefix: str = PREFIX) -> None:
        mujoco = _mujoco()
        self.cfg = cfg
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) or "" for i in range(model.nu)]
        self.ids = {n[len(prefix):]: i for i, n in enumerate(names) if n.startswith(prefix)}
        missing = {"right_hip_y", "left_hip_y", "right_knee", "left_knee", "right_shoulder1"} - set(self.ids)
        if missing:
            raise SimError(f"the model has no humanoid actuators {sorted(missing)} (prefix {prefix!r})")
        self.lo, self.hi = model.actuator_ctrlrange[:, 0].copy(), model.actuator_ctrlrange[:, 1].copy()
        self.nu = model.nu

    def targets(self, t: float) -> np.ndarray:
        """[nu] controls at time t (seconds); actuators that are not the humanoid's get 0."""
        c, q, ids = self.cfg, np.zeros(self.nu), self.ids
        w = 2.0 * math.pi / c.period
        a = c.squat * (1.0 - math.cos(w * t)) / 2.0
        for side in ("right", "left"):
            q[ids[f"{side}_hip_y"]] = -a
            q[ids[f"{side}_knee"]] = -2.0 * a
            q[ids[f"{side}_ankle_y"]] = -a
            q[ids[f"{side}_elbow"]] = -0.8
        s = c.wave * math.sin(2.0 * w * t)
        q[ids["right_shoulder1"]] = s
        q[ids["left_shoulder1"]] = -s
        return np.clip(q, self.lo, self.hi)

    def __call__(self, model: Any, data: Any) -> None:
        data.ctrl[:] = self.targets(float(data.time))
