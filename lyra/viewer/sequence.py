"""The 4D viewer: a Gaussian sequence (one scene per time) with a time slider and a play/pause button.

Swapping frames: when all frames together fit in ``preload_limit`` splats (after ``max_gaussians`` per frame),
every frame is sent to the browser once as its own splat node and a time step only toggles which node is visible
(instant; the browser keeps every frame in memory and sorts them all when the view moves). Larger sequences keep
one splat node that is replaced on every time step (one frame's splats cross the websocket per step; viser drops a
replacement the browser has not received yet when the next one comes, so playback cannot pile up).
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Sequence

import numpy as np

from lyra.cameras import Cameras
from lyra.gaussians import Gaussians
from lyra.viewer.viewer import DEFAULT_MAX_GAUSSIANS, SceneViewer, splat_arrays

PRELOAD_SPLATS = 3_000_000  # splats over all frames up to which every frame is sent once (visibility swaps)
MAX_PLAY_RATE = 10.0  # frames per second at most while playing
MAX_FRAME_HOLD_S = 2.0  # seconds one frame is shown at most while playing


def frame_intervals(times: Sequence[float], fps: float, video_frames: int | None = None) -> list[float]:
    """Seconds each frame stays on screen while playing: real time of the source video, ``(t[i+1] - t[i]) *
    (video_frames - 1) / fps`` (times are normalised; ``video_frames`` unknown: one video frame per sequence frame),
    the last frame as long as the median; clamped to [1 / MAX_PLAY_RATE, MAX_FRAME_HOLD_S]."""
    n = len(times)
    span = ((video_frames if video_frames and video_frames > 1 else n) - 1) / fps
    gaps = [(b - a) * span for a, b in zip(times, times[1:])]
    gaps.append(statistics.median(gaps) if gaps else 1.0 / fps)
    return [min(max(g, 1.0 / MAX_PLAY_RATE), MAX_FRAME_HOLD_S) for g in gaps]


def nearest_frame(times: Sequence[float], t: float) -> int:
    """Index of the time in ``times`` nearest to ``t``."""
    return int(np.argmin(np.abs(np.asarray(times, dtype=np.float64) - float(t))))


class SequenceViewer(SceneViewer):
    """Serves a 4D sequence: ``scenes[i]`` at normalised time ``times[i]`` (strictly increasing), with optional
    ``cameras`` as in :class:`SceneViewer`. ``fps`` / ``video_frames`` set the playback rate (see
    :func:`frame_intervals`); ``max_gaussians`` applies per frame.

    Usage: ``v = SequenceViewer(scenes, times); v.start(); v.set_time(0.5); v.play(); v.pause(); v.stop()``.
    """

    def __init__(
        self,
        scenes: Sequence[Gaussians],
        times: Sequence[float],
        cameras: Cameras | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_gaussians: int | None = DEFAULT_MAX_GAUSSIANS,
        frames_per_trajectory: int | None = None,
        *,
        fps: float = 24.0,
        video_frames: int | None = None,
        preload_limit: int = PRELOAD_SPLATS,
    ) -> None:
        if not scenes or len(scenes) != len(times):
            raise ValueError(f"a sequence needs one scene per time, got {len(scenes)} scenes and {len(times)} times")
        if any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError(f"sequence times must increase strictly, got {list(times)}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        for g in scenes:
            g.validate(check_values=True)
        first = next((g for g in scenes if len(g)), scenes[0])  # sets the scene scale and initial view
        super().__init__(first, cameras, host, port, max_gaussians, frames_per_trajectory)
        self.scenes = list(scenes)
        self.times = [float(t) for t in times]
        self.intervals = frame_intervals(self.times, fps, video_frames)
        shown = [len(g) if max_gaussians is None else min(len(g), max_gaussians) for g in self.scenes]
        self.preload = sum(shown) <= preload_limit
        self.frame = 0
        self._frame_lock = threading.RLock()
        self._play_lock = threading.Lock()
        self._playing = False
        self._player: threading.Thread | None = None
        self._wake = threading.Event()
        self._nodes: list = []  # preload: one splat node per frame (None: an empty frame)
        self._node = None  # otherwise: the one splat node shown
        self.time_slider = self._status = self.play_button = None

    # ------------------------------------------------------------------ splats
    def _add_splats(self, server) -> str:
        """Send frame 0 (or every frame, hidden but the first, when they fit ``preload_limit``); the info line."""
        self.frame = 0
        if self.preload:
            self._nodes = []
            for i, g in enumerate(self.scenes):
                a = splat_arrays(g, self.max_gaussians)
                self._nodes.append(server.scene.add_gaussian_splats(f"/frames/frame_{i:04d}", **a, visible=i == 0)
                                   if len(a["centers"]) else None)
        else:
            self._send_frame(server, 0)
        sizes = [len(g) for g in self.scenes]
        lo, hi = min(sizes), max(sizes)
        info = f"{len(sizes)} frames of {lo:,}" + (f"–{hi:,}" if hi > lo else "") + " Gaussians"
        if self.max_gaussians is not None and hi > self.max_gaussians:
            info += f" (at most {self.max_gaussians:,} shown per frame)"
        return info

    def _send_frame(self, server, i: int) -> None:
        """Replace the one splat node by frame ``i`` (remove it for an empty frame)."""
        a = splat_arrays(self.scenes[i], self.max_gaussians)
        if len(a["centers"]):
            self._node = server.scene.add_gaussian_splats("/gaussians", **a)
        elif self._node is not None:
            self._node.remove()
            self._node = None

    def set_frame(self, i: int) -> None:
        """Show frame ``i`` in every browser (and move the time slider there)."""
        if not 0 <= i < len(self.scenes):
            raise IndexError(f"frame {i} out of range 0..{len(self.scenes) - 1}")
        with self._frame_lock:
            server = self.server
            if server is None or i == self.frame:
                self.frame = i
                return
            if self.preload:
                new, old = self._nodes[i], self._nodes[self.frame]
                if new is not None:
                    new.visible = True  # show the new frame before hiding the old one: no empty flash
                if old is not None:
                    old.visible = False
            else:
                self._send_frame(server, i)
            self.frame = i
            if self.time_slider is not None and nearest_frame(self.times, self.time_slider.value) != i:
                self.time_slider.value = self.times[i]
            if self._status is not None:
                self._status.content = self._status_text()

    def set_time(self, t: float) -> int:
        """Show the frame whose time is nearest to ``t``; returns its index."""
        i = nearest_frame(self.times, t)
        self.set_frame(i)
        return i

    def _status_text(self) -> str:
        return f"frame {self.frame + 1} / {len(self.times)}, t = {self.times[self.frame]:.3f}"

    # ------------------------------------------------------------------ GUI and playback
    def _add_gui(self, server) -> None:
        """The "Time" folder: a slider over the sequence's times, the current frame, a play/pause button."""
        t0, t1 = self.times[0], self.times[-1]
        step = min(b - a for a, b in zip(self.times, self.times[1:])) if len(self.times) > 1 else 1.0
        with server.gui.add_folder("Time"):
            slider = server.gui.add_slider("time", min=t0, max=t1, step=step, initial_value=t0,
                                           hint="normalised time of the sequence (snaps to its frames)")
            slider.on_update(lambda _event: self.set_frame(nearest_frame(self.times, slider.value)))
            self.time_slider = slider
            self._status = server.gui.add_markdown(self._status_text())
            self.play_button = server.gui.add_button("Play", disabled=len(self.times) < 2)
            self.play_button.on_click(lambda _event: self.pause() if self._playing else self.play())

    @property
    def playing(self) -> bool:
        return self._playing

    def play(self) -> None:
        """Cycle through the frames (looping) at :func:`frame_intervals` until :meth:`pause`."""
        if self.server is None or len(self.times) < 2:
            return
        with self._play_lock:
            self._playing = True
            if self._player is None:
                self._wake.clear()
                self._player = threading.Thread(target=self._play_loop, name="lyra-viewer-play", daemon=True)
                self._player.start()
        self._set_button("Pause")

    def pause(self) -> None:
        """Stop cycling through the frames (the current frame stays)."""
        with self._play_lock:
            self._playing = False
            self._wake.set()
        self._set_button("Play")

    def _set_button(self, label: str) -> None:
        if self.play_button is not None and self.server is not None:
            self.play_button.label = label

    def _play_loop(self) -> None:
        while True:
            self._wake.wait(self.intervals[self.frame])
            with self._play_lock:
                self._wake.clear()
                if not self._playing or self.server is None:
                    self._player = None
                    return
            self.set_frame((self.frame + 1) % len(self.scenes))

    def stop(self) -> None:
        """Stop playback and the server (idempotent)."""
        self.pause()
        player = self._player
        if player is not None and player is not threading.current_thread():
            player.join(timeout=5)
        super().stop()
