"""State probes: computer-vision extractors that turn a captured frame into named features.

Each probe reads one number from a region of the frame, the way a player reads
the screen. It measures how full a bar is, whether a colour or a picture
(template) is there, how far apart two things are on the floor, or whether a
body is above its shadow. A probe with a threshold in the profile yields a bit.

Frames enter as ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA uint8, the layout
``mss`` and OpenCV use. Profile colours are RGB and are converted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fightenv.screen.profile import Color, Profile, ProbeSpec


@dataclass(frozen=True)
class Reading:
    """Features read by the probes from one frame."""

    values: dict[str, float]
    """Every probe's feature, by name: the number, clipped to [0, 1], or the bit after its threshold."""
    raw: dict[str, float]
    """Every probe's number before clipping and thresholds."""
    state: np.ndarray
    """``(k,)`` float32 in [0, 1]: the features of the probes with ``in_state``, in profile order."""


def _bounds(colors: Sequence[Color], tolerance: int, channels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    bounds = []
    for red, green, blue in colors:
        centre = np.array([blue, green, red], dtype=np.int32)
        lower = np.clip(centre - tolerance, 0, 255)
        upper = np.clip(centre + tolerance, 0, 255)
        if channels == 4:
            lower = np.append(lower, 0)
            upper = np.append(upper, 255)
        bounds.append((lower.astype(np.uint8), upper.astype(np.uint8)))
    return bounds


def _pixel_box(region: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Map a fractional region to pixel bounds with the same rounding as the Arena's renderer."""
    left, top, right, bottom = region
    x0, y0 = int(round(left * width)), int(round(top * height))
    x1, y1 = max(x0 + 1, int(round(right * width))), max(y0 + 1, int(round(bottom * height)))
    return x0, y0, x1, y1


class _Probe:
    """Base of the compiled probes; compiled for one frame size and channel count."""

    def __init__(self, spec: ProbeSpec, width: int, height: int, channels: int) -> None:
        self.spec = spec
        self.width, self.height = width, height
        self.box = _pixel_box(spec.region, width, height)
        self.bounds = _bounds(spec.colors, spec.tolerance, channels)
        self.bounds_b = _bounds(spec.colors_b, spec.tolerance, channels)
        self.points: tuple[tuple[float, float] | None, ...] = ()
        """Blob probes: the points the last read measured from, in view pixels (None where a blob was not found)."""

    def crop(self, image: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return image[y0:y1, x0:x1]

    @staticmethod
    def mask(pixels: np.ndarray, bounds) -> np.ndarray:
        mask = cv2.inRange(pixels, bounds[0][0], bounds[0][1])
        for lower, upper in bounds[1:]:
            mask |= cv2.inRange(pixels, lower, upper)
        return mask

    def read(self, image: np.ndarray, values: dict[str, float]) -> float:
        raise NotImplementedError


class BarProbe(_Probe):
    """Fill fraction of a bar: the share of its columns (or rows, for vertical bars) that are mostly the bar's colour."""

    def read(self, image, values):
        mask = self.mask(self.crop(image), self.bounds)
        vertical = self.spec.direction in ("bottom_to_top", "top_to_bottom")
        counts = np.count_nonzero(mask, axis=1 if vertical else 0)
        depth = mask.shape[1] if vertical else mask.shape[0]
        return float(np.count_nonzero(counts * 2 >= depth)) / counts.size


class ColorProbe(_Probe):
    """Fraction of the region's pixels that match one of the colours."""

    def read(self, image, values):
        mask = self.mask(self.crop(image), self.bounds)
        return cv2.countNonZero(mask) / mask.size


class TemplateProbe(_Probe):
    """Best normalised cross-correlation (``TM_CCOEFF_NORMED``) of the template anywhere in the region."""

    def __init__(self, spec, width, height, channels):
        super().__init__(spec, width, height, channels)
        template = cv2.imread(str(spec.template), cv2.IMREAD_COLOR)
        if template is None:
            raise ValueError(f"probe {spec.name!r}: cannot read template image {str(spec.template)!r} as PNG or JPEG")
        if spec.step > 1:
            size = (len(range(0, template.shape[1], spec.step)), len(range(0, template.shape[0], spec.step)))
            template = cv2.resize(template, size, interpolation=cv2.INTER_NEAREST)
        x0, y0, x1, y1 = self.box
        if template.shape[0] > y1 - y0 or template.shape[1] > x1 - x0:
            raise ValueError(
                f"probe {spec.name!r}: template {template.shape[1]}x{template.shape[0]} px is larger than its region "
                f"{x1 - x0}x{y1 - y0} px at frame size {width}x{height}; enlarge the region or crop the template"
            )
        self.template = template

    def read(self, image, values):
        pixels = self.crop(image)
        if pixels.shape[2] == 4:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
        scores = cv2.matchTemplate(pixels, self.template, cv2.TM_CCOEFF_NORMED)
        return float(np.nan_to_num(scores.max()))


class _BlobProbe(_Probe):
    def centroid(self, mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> tuple[float, float] | None:
        """Return the blob's centroid in frame pixels, or None when fewer than ``min_pixels`` match.

        ``offset`` is the mask's top-left corner within the probe's region.
        """
        # Moments over the blob's bounding box only: a tenth of the cost of the whole region.
        x, y, width, height = cv2.boundingRect(mask)
        if width == 0:
            return None
        moments = cv2.moments(mask[y:y + height, x:x + width], binaryImage=True)
        if moments["m00"] < self.spec.min_pixels:
            return None
        return (
            self.box[0] + offset[0] + x + moments["m10"] / moments["m00"],
            self.box[1] + offset[1] + y + moments["m01"] / moments["m00"],
        )


class _FloorProbe(_BlobProbe):
    """A blob probe that maps frame points onto the floor plane through the homography of ``floor_image`` and
    ``floor_world``."""

    def __init__(self, spec, width, height, channels):
        super().__init__(spec, width, height, channels)
        image_points = np.array([[u * width, v * height] for u, v in spec.floor_image], dtype=np.float32)
        world_points = np.array(spec.floor_world, dtype=np.float32)
        self.homography = cv2.getPerspectiveTransform(image_points, world_points)

    def to_floor(self, *points: tuple[float, float]) -> np.ndarray:
        """Return the floor coordinates of frame ``points``, ``(len(points), 2)``."""
        return cv2.perspectiveTransform(np.array([points], dtype=np.float64), self.homography)[0]


class DistanceProbe(_FloorProbe):
    """Distance on a plane between two colour blobs' centroids, through a homography from four point pairs.

    When either blob is hidden the previous value is kept, as a player
    remembers where a fighter was.
    """

    def __init__(self, spec, width, height, channels):
        super().__init__(spec, width, height, channels)
        self.last = 0.0

    def read(self, image, values):
        pixels = self.crop(image)
        a = self.centroid(self.mask(pixels, self.bounds))
        b = self.centroid(self.mask(pixels, self.bounds_b))
        self.points = (a, b)
        if a is None or b is None:
            return self.last
        points = self.to_floor(a, b)
        self.last = float(np.linalg.norm(points[0] - points[1])) / self.spec.scale
        return self.last


class PositionProbe(_FloorProbe):
    """Position of one colour blob's centroid along one floor axis, through the floor homography, scaled by ``span``.

    When the blob is hidden the previous value is kept, like ``DistanceProbe``.
    """

    def __init__(self, spec, width, height, channels):
        super().__init__(spec, width, height, channels)
        self.last = 0.5

    def read(self, image, values):
        point = self.centroid(self.mask(self.crop(image), self.bounds))
        self.points = (point,)
        if point is None:
            return self.last
        world = self.to_floor(point)[0]
        low, high = self.spec.span
        self.last = float(np.clip((world[self.spec.axis] - low) / (high - low), 0.0, 1.0))
        return self.last


class ElevationProbe(_BlobProbe):
    """Height of a body blob's lowest pixel above the centroid of its shadow blob, as a fraction of the frame height.

    Standing bodies overlap their shadow, so the value is about zero or
    negative; it is 0 when the body or the shadow is not visible. The shadow
    is looked for below the body's top edge and at most one body width to
    either side of the body.
    """

    def read(self, image, values):
        pixels = self.crop(image)
        body = self.mask(pixels, self.bounds)
        self.points = (None, None)
        if cv2.countNonZero(body) < self.spec.min_pixels:
            return 0.0
        left, top, width, rows = cv2.boundingRect(body)

        # Look for the shadow only below the body's top and within a body width to either side of it.
        band_left = max(0, left - width)
        band = pixels[top:, band_left:left + 2 * width]
        shadow = self.centroid(self.mask(band, self.bounds_b), offset=(band_left, top))
        lowest_row = self.box[1] + top + rows - 0.5
        self.points = ((self.box[0] + left + width / 2, lowest_row), shadow)
        if shadow is None:
            return 0.0
        return (shadow[1] - lowest_row) / self.height


class DerivedProbe(_Probe):
    """Another probe's number, thresholded again (for example a distance turned into "in range")."""

    def read(self, image, values):
        return values[self.spec.source]


_KINDS = {
    "bar": BarProbe, "color": ColorProbe, "template": TemplateProbe, "distance": DistanceProbe, "position": PositionProbe,
    "elevation": ElevationProbe, "derived": DerivedProbe,
}


class StateReader:
    """Runs a profile's probes on captured frames; compiles them again when the frame size changes.

    The frame is converted to contiguous BGR once, and once per distinct probe
    ``step`` it is subsampled (every ``step``-th pixel in both directions),
    so probes that read big cues can run on a quarter of the pixels.
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.probes = profile.probes
        self.state_names = profile.state_names
        self._compiled: list[_Probe] = []
        self._shape: tuple[int, ...] | None = None
        self._view_sizes: dict[int, tuple[int, int]] = {}

    def _compile(self, shape: tuple[int, ...]) -> None:
        height, width = shape[:2]
        self._view_sizes = {}
        for spec in self.probes:
            step = spec.step
            self._view_sizes[step] = (len(range(0, width, step)), len(range(0, height, step)))
        self._compiled = [
            _KINDS[spec.kind](spec, *self._view_sizes[spec.step], 3) for spec in self.probes
        ]
        self._shape = shape

    def _views(self, image: np.ndarray) -> dict[int, np.ndarray]:
        bgr = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) if image.shape[2] == 4 else np.ascontiguousarray(image)
        views = {}
        for step, size in self._view_sizes.items():
            # Nearest-neighbour resizing by a whole factor keeps every step-th pixel, with exact colours.
            views[step] = bgr if step == 1 else cv2.resize(bgr, size, interpolation=cv2.INTER_NEAREST)
        return views

    def read(self, image: np.ndarray) -> Reading:
        """Read every probe from ``image``, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA uint8."""
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) BGR or (H, W, 4) BGRA uint8 frame, got {image.shape} {image.dtype}")
        if image.shape != self._shape:
            self._compile(image.shape)
        views = self._views(image)
        raw: dict[str, float] = {}
        values: dict[str, float] = {}
        for probe in self._compiled:
            spec = probe.spec
            number = probe.read(views[spec.step], raw)
            raw[spec.name] = number
            if spec.threshold is not None:
                values[spec.name] = 1.0 if spec.threshold.test(number) else 0.0
            else:
                values[spec.name] = min(max(number, 0.0), 1.0)
        state = np.array([values[name] for name in self.state_names], dtype=np.float32)
        return Reading(values=values, raw=raw, state=state)

    def blob_points(self) -> dict[str, tuple[tuple[float, float] | None, ...]]:
        """Return, per distance, position or elevation probe, the points its last read measured from, in frame pixels.

        A distance probe gives its two blobs' centroids (``colors``, then ``colors_b``); a position probe its
        one blob's centroid. An elevation probe
        gives the bottom centre of the body blob's bounding box, then the shadow blob's centroid. None
        stands for a blob that was not found.
        """
        points = {}
        for probe in self._compiled:
            if isinstance(probe, _BlobProbe):
                step = probe.spec.step
                points[probe.spec.name] = tuple(
                    None if point is None else (point[0] * step, point[1] * step) for point in probe.points
                )
        return points
