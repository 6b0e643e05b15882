"""World: procedural scenes (static and moving) with exact RGB, z-depth and object masks from any camera.

The ground truth of the pocket scale: ``generate_world(seed, kind, moving)`` builds a reproducible
room, yard or photo world (real photographs on walls, floor, boxes and free-standing layers, see
``lyra.world.photos``) of textured planes, boxes, spheres and cylinders; ``World.render(cameras, time)``
ray-casts it analytically (``WorldRender``: rgb [N, 3, H, W], depth [N, 1, H, W] camera-space z with
0 = sky, mask [N, 1, H, W] int64 with 0 = sky); ``save_json`` / ``load_json`` round-trip exactly.
"""

from lyra.world.generate import WORLD_KINDS, generate_world
from lyra.world.photos import PHOTOS, Photo, load_photo, photo_names
from lyra.world.primitives import Box, Cylinder, Motion, Plane, Primitive, Sphere, quat_about_axis
from lyra.world.scene import WORLD_VERSION, DirectionalLight, Sky, World, WorldError, WorldRender, sky_color
from lyra.world.textures import Texture, eval_texture, fbm, value_noise

__all__ = [
    "PHOTOS",
    "WORLD_KINDS",
    "WORLD_VERSION",
    "Box",
    "Cylinder",
    "DirectionalLight",
    "Motion",
    "Photo",
    "Plane",
    "Primitive",
    "Sky",
    "Sphere",
    "Texture",
    "World",
    "WorldError",
    "WorldRender",
    "eval_texture",
    "fbm",
    "generate_world",
    "load_photo",
    "photo_names",
    "quat_about_axis",
    "sky_color",
    "value_noise",
]
