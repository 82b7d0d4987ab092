"""Software renderer of the Arena: a perspective view of the ring plus a HUD, drawn with OpenCV.

Everything is drawn in normalised screen coordinates and scaled to the
requested size, so the 84x84 observation and a 640x480 window show the same
picture. Each state a player reads off the screen has its own colour per
fighter (attacking, recovering, guarding, grabbing, stunned, special), and the
HUD sits in fixed boxes, ``HUD_BOXES``, so that a screen profile can read both
with colour and bar probes.

Colours are RGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fightenv.arena.rules import (
    MAX_HEALTH, MAX_METER, RING_HALF_X_M, RING_HALF_Z_M, TICK_HZ, Fighter, Game, Phase,
)

SKY = (34, 38, 52)
FLOOR = (92, 84, 74)
FLOOR_EDGE = (200, 196, 186)
HUD_BACK = (70, 22, 22)
HEALTH_FILL = (60, 220, 80)
METER_FILL = (70, 130, 255)
METER_FULL = (255, 215, 40)
TIMER_FILL = (235, 235, 235)


@dataclass(frozen=True)
class FighterPalette:
    """Colours of one fighter; every cue differs between the two fighters."""

    body: tuple[int, int, int]
    head: tuple[int, int, int]
    attack: tuple[int, int, int]
    recovery: tuple[int, int, int]
    guard: tuple[int, int, int]
    grab: tuple[int, int, int]
    stunned: tuple[int, int, int]
    special: tuple[int, int, int]
    shadow: tuple[int, int, int]
    """Shadow on the floor; tinted per fighter so that a probe can tell whose feet left the ground."""


PALETTES = (
    FighterPalette(
        body=(50, 100, 230), head=(120, 160, 250), attack=(255, 240, 0), recovery=(120, 120, 140),
        guard=(0, 235, 235), grab=(255, 0, 255), stunned=(200, 220, 255), special=(255, 255, 255),
        shadow=(24, 30, 78),
    ),
    FighterPalette(
        body=(210, 50, 40), head=(240, 130, 110), attack=(255, 140, 0), recovery=(150, 110, 90),
        guard=(40, 255, 40), grab=(150, 40, 255), stunned=(255, 200, 190), special=(255, 255, 150),
        shadow=(84, 34, 30),
    ),
)

# HUD boxes as (left, top, right, bottom) fractions of the frame.
HUD_BOXES: dict[str, tuple[float, float, float, float]] = {
    "player_health": (0.04, 0.035, 0.44, 0.085),
    "opponent_health": (0.56, 0.035, 0.96, 0.085),
    "player_meter": (0.04, 0.10, 0.30, 0.13),
    "opponent_meter": (0.70, 0.10, 0.96, 0.13),
    "timer": (0.45, 0.025, 0.55, 0.095),
    "timer_bar": (0.40, 0.105, 0.60, 0.125),
    "arena": (0.0, 0.16, 1.0, 1.0),
}

# Camera: behind the near edge of the ring and above it, looking at the centre.
_CAMERA = np.array([0.0, 3.6, -6.4])
_TARGET = np.array([0.0, 0.2, 0.9])
_FORWARD = (_TARGET - _CAMERA) / np.linalg.norm(_TARGET - _CAMERA)
_RIGHT = np.array([1.0, 0.0, 0.0])
_UP = np.cross(_FORWARD, _RIGHT)
_FOCAL_X = 0.75
_FOCAL_Y = _FOCAL_X * 4.0 / 3.0
_VERTICAL_OFFSET = 0.12


def project(x: float, y: float, z: float) -> tuple[float, float, float]:
    """Project a world point in metres to normalised screen coordinates ``(u, v)`` and its depth in metres."""
    dx, dy, dz = x - _CAMERA[0], y - _CAMERA[1], z - _CAMERA[2]
    xc = dx * _RIGHT[0] + dy * _RIGHT[1] + dz * _RIGHT[2]
    yc = dx * _UP[0] + dy * _UP[1] + dz * _UP[2]
    zc = dx * _FORWARD[0] + dy * _FORWARD[1] + dz * _FORWARD[2]
    return 0.5 + _FOCAL_X * xc / zc, 0.5 + _VERTICAL_OFFSET - _FOCAL_Y * yc / zc, zc


class Renderer:
    """Draws games at one fixed size; caches the static background."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._background = self._draw_background()
        self._scale = height / 240.0

    def _px(self, u: float, v: float) -> tuple[int, int]:
        return int(round(u * self.width)), int(round(v * self.height))

    def _box(self, name: str) -> tuple[int, int, int, int]:
        left, top, right, bottom = HUD_BOXES[name]
        return (
            int(round(left * self.width)), int(round(top * self.height)),
            int(round(right * self.width)), int(round(bottom * self.height)),
        )

    def _draw_background(self) -> np.ndarray:
        image = np.empty((self.height, self.width, 3), dtype=np.uint8)
        image[:] = SKY
        corners = [
            (-RING_HALF_X_M, -RING_HALF_Z_M), (RING_HALF_X_M, -RING_HALF_Z_M),
            (RING_HALF_X_M, RING_HALF_Z_M), (-RING_HALF_X_M, RING_HALF_Z_M),
        ]
        points = np.array([self._px(*project(x, 0.0, z)[:2]) for x, z in corners], dtype=np.int32)
        cv2.fillPoly(image, [points], FLOOR)
        cv2.polylines(image, [points], True, FLOOR_EDGE, max(1, round(self.height / 160)))
        for name in ("player_health", "opponent_health", "player_meter", "opponent_meter", "timer_bar"):
            left, top, right, bottom = self._box(name)
            cv2.rectangle(image, (left, top), (right - 1, bottom - 1), HUD_BACK, -1)
        return image

    def render(self, game: Game) -> np.ndarray:
        """Return the frame of ``game`` as ``(height, width, 3)`` uint8 RGB."""
        image = self._background.copy()
        order = sorted((0, 1), key=lambda i: -game.fighters[i].z)
        for i in order:
            self._draw_shadow(image, game.fighters[i], PALETTES[i])
        for i in order:
            self._draw_fighter(image, game.fighters[i], PALETTES[i])
        self._draw_hud(image, game)
        return image

    # -- fighters ----------------------------------------------------------------

    def _draw_shadow(self, image: np.ndarray, f: Fighter, palette: FighterPalette) -> None:
        u, v, depth = project(f.x, 0.0, f.z)
        radius = self._metres(0.32, depth)
        cv2.ellipse(image, self._px(u, v), (radius, max(1, radius // 3)), 0, 0, 360, palette.shadow, -1)

    def _metres(self, length_m: float, depth: float) -> int:
        """Return ``length_m`` at ``depth`` as a whole number of pixels (at least 1)."""
        return max(1, int(round(length_m * _FOCAL_Y / depth * self.height)))

    def _draw_fighter(self, image: np.ndarray, f: Fighter, palette: FighterPalette) -> None:
        phase = f.phase
        thick = max(1, round(3 * self._scale))
        base_u, base_v, depth = project(f.x, f.y, f.z)

        if phase is Phase.DOWN:
            # Lying on the floor across the facing direction.
            left = self._px(*project(f.x - 0.55 * f.face_x, 0.15, f.z - 0.55 * f.face_z)[:2])
            right = self._px(*project(f.x + 0.55 * f.face_x, 0.15, f.z + 0.55 * f.face_z)[:2])
            cv2.line(image, left, right, palette.stunned, max(2, self._metres(0.35, depth)))
            return

        # Blockstun shows on the torso too, so that it reads as stunned and not only as guarding.
        torso = palette.stunned if phase in (Phase.HITSTUN, Phase.BLOCKSTUN) else palette.body
        hip = project(f.x, f.y + 0.8, f.z)
        neck = project(f.x, f.y + 1.45, f.z)
        half_width = self._metres(0.22, depth)
        foot_spread = self._metres(0.14, depth)

        # Legs, torso, head.
        hip_px = self._px(*hip[:2])
        for sign in (-1, 1):
            cv2.line(image, (hip_px[0] + sign * foot_spread // 2, hip_px[1]),
                     (self._px(base_u, base_v)[0] + sign * foot_spread, self._px(base_u, base_v)[1]),
                     palette.body, thick)
        neck_px = self._px(*neck[:2])
        cv2.rectangle(image, (neck_px[0] - half_width, neck_px[1]), (hip_px[0] + half_width, hip_px[1]), torso, -1)
        head = self._px(*project(f.x, f.y + 1.68, f.z)[:2])
        cv2.circle(image, head, self._metres(0.17, depth), palette.head, -1)

        if f.guarding or phase is Phase.BLOCKSTUN:
            self._draw_guard(image, f, palette)
        move = f.move
        if move is None or f.stun_ticks > 0:
            return
        if move.invulnerable and phase in (Phase.STARTUP, Phase.ACTIVE):
            centre = self._px(*project(f.x, f.y + 1.0, f.z)[:2])
            cv2.circle(image, centre, self._metres(0.75, depth), palette.special, thick)
        if move.grab:
            colour = palette.grab if phase is not Phase.RECOVERY else palette.recovery
            extend = 0.45 if phase is not Phase.STARTUP else 0.25
            hand = self._px(*project(f.x + f.move_dir_x * extend, f.y + 1.15, f.z + f.move_dir_z * extend)[:2])
            cv2.circle(image, hand, self._metres(0.14, depth), colour, -1)
            return

        # The striking limb: short while winding up, full length while active, drooping in recovery.
        if phase is Phase.STARTUP:
            colour, extend = palette.attack, 0.35
        elif phase is Phase.ACTIVE:
            colour, extend = palette.attack, move.reach_m + 0.3
        else:
            colour, extend = palette.recovery, 0.5 * (move.reach_m + 0.3)
        height = {"sweep": 0.25, "kick": 0.8, "lunge": 1.25}.get(move.name, 1.3)
        root = self._px(*project(f.x, f.y + height, f.z)[:2])
        tip = self._px(*project(f.x + f.move_dir_x * extend, f.y + height, f.z + f.move_dir_z * extend)[:2])
        cv2.line(image, root, tip, colour, max(2, self._metres(0.13, depth)))

    def _draw_guard(self, image: np.ndarray, f: Fighter, palette: FighterPalette) -> None:
        cx, cz = f.x + 0.32 * f.face_x, f.z + 0.32 * f.face_z
        side_x, side_z = -f.face_z * 0.25, f.face_x * 0.25
        corners = [
            project(cx - side_x, f.y + 0.6, cz - side_z), project(cx + side_x, f.y + 0.6, cz + side_z),
            project(cx + side_x, f.y + 1.6, cz + side_z), project(cx - side_x, f.y + 1.6, cz - side_z),
        ]
        points = np.array([self._px(u, v) for u, v, _ in corners], dtype=np.int32)
        # Seen edge-on the shield would vanish; keep it at least a few pixels wide.
        min_half = max(1, round(2 * self._scale))
        mid_x = int(points[:, 0].mean())
        points[0, 0] = points[3, 0] = min(points[0, 0], points[3, 0], mid_x - min_half)
        points[1, 0] = points[2, 0] = max(points[1, 0], points[2, 0], mid_x + min_half)
        cv2.fillPoly(image, [points], palette.guard)

    # -- HUD -----------------------------------------------------------------------

    def _fill_bar(self, image: np.ndarray, name: str, fraction: float, colour, from_right: bool = False) -> None:
        left, top, right, bottom = self._box(name)
        filled = int(round((right - left) * min(max(fraction, 0.0), 1.0)))
        if filled <= 0:
            return
        if from_right:
            image[top:bottom, right - filled:right] = colour
        else:
            image[top:bottom, left:left + filled] = colour

    def _draw_hud(self, image: np.ndarray, game: Game) -> None:
        player, cpu = game.fighters
        self._fill_bar(image, "player_health", player.health / MAX_HEALTH, HEALTH_FILL)
        self._fill_bar(image, "opponent_health", cpu.health / MAX_HEALTH, HEALTH_FILL, from_right=True)
        for name, f, from_right in (("player_meter", player, False), ("opponent_meter", cpu, True)):
            colour = METER_FULL if f.meter >= MAX_METER else METER_FILL
            self._fill_bar(image, name, f.meter / MAX_METER, colour, from_right=from_right)
        self._fill_bar(image, "timer_bar", game.ticks_left / game.round_ticks, TIMER_FILL)
        if self.height >= 120:
            left, top, right, bottom = self._box("timer")
            seconds = math.ceil(game.ticks_left / TICK_HZ)
            scale = 0.45 * self._scale
            text = f"{seconds:02d}"
            (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            origin = ((left + right - w) // 2, (top + bottom + h) // 2)
            cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TIMER_FILL, max(1, round(self._scale)))
