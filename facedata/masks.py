"""Put a face mask on an unmasked face, fitted from a detector's five landmarks and its box.

The templates and textures are MaskTheFace's (MIT; a folder the user points at, by default
``../shared/masks``: ``masks.cfg``, ``templates/*.png`` RGBA, ``textures/<kind>/*``).
Each template carries six anchor points (``masks.cfg``), matched to six points on the face:

- ``b``, the middle of the nose bridge (the mask's top centre);
- ``a``, ``c``: the face outline at the height of the nose tip, left and right (image sides);
- ``e``: the bottom of the chin;
- ``d``, ``f``: the face outline at the height of the lower lip.

YuNet gives the eye centres, the nose tip and the mouth corners; :func:`face_points` puts
the six points in a frame of the face itself (the eye line and its normal), so a tilted
face gets a tilted mask, and takes the outline from the face box, which YuNet draws from
cheek to cheek. A homography from the template's six anchors to the six face points
(least squares) warps the template; a face turned to one side (:func:`yaw` from the
landmarks) gets the template turned that way.

A mask can be worn wrong (``wear``, :data:`WEAR`): the same six points slid down the face
along its own vertical, so that the top edge sits under the nose tip (``nose``: nose out),
under the lower lip (``mouth``: nose and mouth out) or at the chin (``chin``: pulled down),
a little shorter (a mask pulled down bunches up) and narrower where it reaches the jaw and
the neck. Worn right (``right``) it covers the bridge of the nose to the chin.

Styles (:class:`Style`): the template's own colours, or its shading carrying a plain colour
or a texture; then the mask takes the photo's light — its white point, its colour cast and
the shading across the face — so that a white mask in a dim room is grey, not glowing.
"""

from __future__ import annotations

import colorsys
import configparser
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ANCHORS = ("a", "b", "c", "d", "e", "f")
# How a mask is worn: "right", or wrong in one of the three commonest ways.
WEAR = ("right", "nose", "mouth", "chin")
WRONG = WEAR[1:]
# Per way of wearing it wrong: where the top edge goes (a face point and how far below it, in
# eye distances) and the height kept, as a share of the mask worn right.
_SLID = {"nose": ("nose", 0.12, 0.9), "mouth": ("lip", 0.08, 0.85), "chin": ("chin", -0.3, 0.8)}
# |yaw| (nose offset from the eye midpoint along the eye line, in eye distances) above which
# a face counts as turned: 5% of the shared scenes' frontal-ish faces pass 0.4, half 0.1.
TURNED_YAW = 0.15
# Plain colours by name (RGB): the dark and coloured cloth masks that fooled the classifier.
COLOURS = {
    "black": (22, 22, 24), "navy": (28, 36, 72), "grey": (120, 122, 125),
    "pink": (232, 150, 170), "white": (236, 236, 232), "beige": (214, 190, 160),
    "lilac": (190, 160, 210), "red": (170, 30, 40), "green": (60, 120, 80),
    "blue": (70, 110, 190), "yellow": (230, 200, 70), "brown": (100, 70, 50),
}


@dataclass(frozen=True)
class Template:
    """One mask picture (RGBA) and its six anchor points, in its own pixels."""

    name: str
    family: str          # surgical, surgical_blue, surgical_green, N95, KN95, cloth, gas
    view: str            # front, left (nose to the image's left), right
    rgba: np.ndarray     # (h, w, 4) uint8
    anchors: np.ndarray  # (6, 2) float32, a..f


@dataclass(frozen=True)
class Style:
    """How a template is painted: its own colours (``colour`` None, no texture), a plain
    colour, or a texture, over the template's shading."""

    colour: str | None = None          # a key of COLOURS, or "rgb:R,G,B"
    texture: str | None = None         # a texture file's path
    texture_strength: float = 1.0      # texture over the plain colour, 0..1
    shading: float = 1.0               # how much of the template's own folds show, 0..1
    light: float = 1.0                 # how much of the photo's light the mask takes, 0..1

    @property
    def name(self) -> str:
        if self.texture:
            return "texture:" + Path(self.texture).stem
        return self.colour or "own"


class MaskError(ValueError):
    """The masks folder can't be used; the message names what is missing."""


def colour_rgb(colour: str) -> np.ndarray:
    if colour.startswith("rgb:"):
        return np.array([int(v) for v in colour[4:].split(",")], np.float32)
    return np.array(COLOURS[colour], np.float32)


def load_templates(masks_dir: Path | str) -> list[Template]:
    """Every template of ``masks_dir/masks.cfg`` whose picture is there (sections without
    one, ``empty`` and ``inpaint``, are not templates)."""
    masks_dir = Path(masks_dir)
    cfg_path = masks_dir / "masks.cfg"
    if not cfg_path.is_file():
        raise MaskError(f"{cfg_path} not found: give the masks folder (templates/, textures/, "
                        "masks.cfg), e.g. ../shared/masks")
    cfg = configparser.ConfigParser(inline_comment_prefixes=(";",))
    cfg.read(cfg_path)
    templates = []
    for name in cfg.sections():
        section = cfg[name]
        if "template" not in section:
            continue
        path = masks_dir / "templates" / Path(section["template"]).name
        rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
            raise MaskError(f"{path}: not an RGBA PNG (masks.cfg section [{name}])")
        anchors = np.array([[float(v) for v in section[f"mask_{k}"].split(",")]
                            for k in ANCHORS], np.float32)
        view = "left" if name.endswith("_left") else "right" if name.endswith("_right") else "front"
        family = name.removesuffix("_left").removesuffix("_right")
        templates.append(Template(name, family, view, cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA),
                                  anchors))
    if not templates:
        raise MaskError(f"{cfg_path} names no template pictures")
    return templates


def list_textures(masks_dir: Path | str) -> list[Path]:
    """The texture pictures under ``masks_dir/textures``, sorted."""
    root = Path(masks_dir) / "textures"
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _axes(landmarks) -> tuple[np.ndarray, ...]:
    """The face's own frame: eye midpoint, unit eye line (image left to right for a face
    looking at the camera), unit normal towards the mouth, and the eye distance."""
    pts = np.asarray(landmarks, np.float32).reshape(5, 2)
    right_eye, left_eye = pts[0], pts[1]   # the person's right eye is on the image's left
    iod = float(np.linalg.norm(left_eye - right_eye))
    if iod < 1e-3:
        raise ValueError("landmarks with both eyes at one point")
    u = (left_eye - right_eye) / iod
    v = np.array([-u[1], u[0]], np.float32)
    if np.dot((pts[3] + pts[4]) / 2 - (pts[0] + pts[1]) / 2, v) < 0:
        v = -v
    return (right_eye + left_eye) / 2, u, v, iod


def yaw(landmarks) -> float:
    """How far the face is turned: the nose tip's offset from the eye midpoint along the eye
    line, in eye distances. About 0 facing the camera; negative when the nose is towards the
    image's left. Turned by 45° it is roughly ±0.5."""
    eyes, u, _, iod = _axes(landmarks)
    nose = np.asarray(landmarks, np.float32).reshape(5, 2)[2]
    return float(np.dot(nose - eyes, u) / iod)


def _to_box_side(point, direction, box) -> float:
    """How far from ``point`` along ``direction`` the vertical side of ``box`` (x, y, w, h)
    lies that the direction points at."""
    x, _, w, _ = box
    edge = x + w if direction[0] > 0 else x
    return float((edge - point[0]) / direction[0]) if abs(direction[0]) > 1e-3 else 0.0


def face_points(box, landmarks, wear: str = "right") -> np.ndarray:
    """The six face points ``a``..``f`` (image pixels, shape (6, 2)) a mask worn as
    ``wear`` says (:data:`WEAR`) is fitted to, for a face box ``(x, y, w, h)`` and its five
    landmarks. Proportions measured on the shared scenes' frontal faces: eyes to mouth ≈ 1.0
    eye distance, mouth to chin ≈ 0.7, box ≈ 2.2 wide."""
    right, marks = _points_worn_right(box, landmarks)
    if wear == "right":
        return right
    if wear not in _SLID:
        raise ValueError(f"wear must be one of {WEAR}, got {wear!r}")
    eyes, u, v, iod = _axes(landmarks)
    mark, below, height = _SLID[wear]
    depth = (right - eyes) @ v                    # how far below the eye line, each point
    side = (right - marks["centre"]) @ u          # how far left or right of the midline
    top = depth[1]
    new_top = float((marks[mark] - eyes) @ v) + below * iod
    new_depth = new_top + (depth - top) * height
    # Narrower below the mouth: the jaw, then the neck (to 3/4 of the width a chin's
    # depth below the lip).
    lip, chin = float((marks["lip"] - eyes) @ v), float((marks["chin"] - eyes) @ v)
    narrowing = 1.0 - 0.25 * np.clip((new_depth - lip) / max(chin - lip, 1e-3) / 2, 0.0, 1.0)
    centre = marks["centre"] - v * float((marks["centre"] - eyes) @ v)
    return (centre[None] + np.outer(side * narrowing, u)
            + np.outer(new_depth, v)).astype(np.float32)


def _points_worn_right(box, landmarks) -> tuple[np.ndarray, dict]:
    """:func:`face_points` for a mask worn right, and the face points they come from."""
    pts = np.asarray(landmarks, np.float32).reshape(5, 2)
    eyes, u, v, iod = _axes(pts)
    nose, mouth = pts[2], (pts[3] + pts[4]) / 2
    b = eyes + 0.4 * (nose - eyes)
    lip = mouth + v * 0.15 * iod
    _, y, _, h = box
    chin_from_box = float(y + h - mouth[1])
    chin = mouth + v * np.clip(0.5 * (0.7 * iod + chin_from_box), 0.45 * iod, 1.0 * iod)
    # The outline: the box's sides along the eye line, a little inside; the jaw narrower.
    a = nose - u * 0.95 * _to_box_side(nose, -u, box)
    c = nose + u * 0.95 * _to_box_side(nose, u, box)
    d = lip - u * 0.85 * _to_box_side(lip, -u, box)
    f = lip + u * 0.85 * _to_box_side(lip, u, box)
    points = np.stack([a, b, c, d, chin, f]).astype(np.float32)
    return points, {"nose": nose, "lip": lip, "chin": chin, "centre": (a + c) / 2}


def choose_template(templates: list[Template], family: str, landmarks) -> Template:
    """The ``family``'s template for this face's view: turned left or right when the face
    is turned (and the family has such a template), else the front one."""
    turn = yaw(landmarks)
    view = "front" if abs(turn) < TURNED_YAW else ("left" if turn < 0 else "right")
    choices = {t.view: t for t in templates if t.family == family}
    if not choices:
        raise MaskError(f"no template of the family {family!r}")
    return choices.get(view) or choices.get("front") or next(iter(choices.values()))


def _texture_layer(texture: Path, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A texture picture scaled, turned and cut to ``size`` (w, h), RGB float 0..1."""
    img = cv2.imread(str(texture), cv2.IMREAD_COLOR)
    if img is None:
        raise MaskError(f"{texture}: not a readable picture")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    w, h = size
    # A pattern repeat of a quarter to two thirds of the mask's width.
    scale = rng.uniform(0.25, 0.66) * w / max(img.shape[:2])
    tile = cv2.resize(img, None, fx=max(scale, 1e-3), fy=max(scale, 1e-3),
                      interpolation=cv2.INTER_AREA)
    reps = (h // tile.shape[0] + 2, w // tile.shape[1] + 2, 1)
    sheet = np.tile(tile, reps)
    angle = rng.uniform(-30, 30)
    m = cv2.getRotationMatrix2D((sheet.shape[1] / 2, sheet.shape[0] / 2), angle, 1.0)
    sheet = cv2.warpAffine(sheet, m, (sheet.shape[1], sheet.shape[0]), borderMode=cv2.BORDER_WRAP)
    y0 = (sheet.shape[0] - h) // 2
    x0 = (sheet.shape[1] - w) // 2
    return sheet[y0:y0 + h, x0:x0 + w]


def paint(template: Template, style: Style, rng: np.random.Generator) -> np.ndarray:
    """The template's RGBA (float 0..1) repainted in ``style``, before any warping."""
    rgba = template.rgba.astype(np.float32) / 255.0
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    if style.colour is None and style.texture is None:
        return rgba
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    inside = alpha[..., 0] > 0.5
    ref = np.percentile(grey[inside], 90) if inside.any() else 1.0
    # The template's folds and pleats as a multiplier around 1; ``shading`` of it shows.
    folds = np.clip(grey / max(ref, 1e-3), 0.0, 1.2)[..., None]
    folds = 1.0 + style.shading * (folds - 1.0)
    base = colour_rgb(style.colour or "white") / 255.0
    paint_rgb = np.broadcast_to(base, rgb.shape)
    if style.texture:
        tex = _texture_layer(Path(style.texture), (rgb.shape[1], rgb.shape[0]), rng)
        paint_rgb = style.texture_strength * tex + (1 - style.texture_strength) * paint_rgb
    return np.concatenate([np.clip(paint_rgb * folds, 0, 1), alpha], axis=2)


def _scene_light(image: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, float]:
    """The photo's light where the mask goes: a per-pixel multiplier (the face's shading,
    around 1) and the colour of a white surface under this light (RGB 0..1)."""
    img = image.astype(np.float32) / 255.0
    grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
    # White point: a bright but not clipped part of the photo; grey-world colour cast.
    white = float(np.clip(np.percentile(grey, 97), 0.25, 1.0))
    cast = img.reshape(-1, 3).mean(0) / max(float(grey.mean()), 1e-3)
    cast = np.clip(cast / cast.mean(), 0.8, 1.2)
    # The shading across the face: its low frequencies, relative to their mean there.
    ys, xs = np.nonzero(region > 0.5)
    size = max(8, int(max(np.ptp(ys) if len(ys) else 8, np.ptp(xs) if len(xs) else 8)))
    low = cv2.GaussianBlur(grey, (0, 0), sigmaX=size / 5)
    mean = float(low[region > 0.5].mean()) if len(ys) else float(low.mean())
    shade = np.clip(low / max(mean, 1e-3), 0.5, 1.5)
    return shade[..., None] * white * cast, white


def put_mask(image: np.ndarray, box, landmarks, template: Template, style: Style,
             rng: np.random.Generator, wear: str = "right") -> np.ndarray:
    """``image`` (RGB uint8) with ``template`` painted in ``style`` over the face at ``box``
    with ``landmarks``, worn as ``wear`` says (:data:`WEAR`); a new array."""
    h, w = image.shape[:2]
    src = template.anchors
    dst = face_points(box, landmarks, wear)
    matrix, _ = cv2.findHomography(src, dst, 0)
    if matrix is None or not np.isfinite(matrix).all():
        raise ValueError("no homography from the template to this face")
    painted = paint(template, style, rng)
    # Warp premultiplied colour, so the edge does not pull in the template's background.
    premult = np.concatenate([painted[..., :3] * painted[..., 3:], painted[..., 3:]], axis=2)
    warped = cv2.warpPerspective(premult, matrix, (w, h), flags=cv2.INTER_AREA
                                 if _shrinks(matrix, template) else cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = np.clip(warped[..., 3:], 0, 1)
    colour = np.where(alpha > 1e-4, warped[..., :3] / np.maximum(alpha, 1e-4), 0)
    # Feather the cut edge by about a pixel: the template's edge is sharper than a camera's.
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=0.6)[..., None]
    light, _ = _scene_light(image, alpha[..., 0])
    colour = colour * (1 - style.light + style.light * light)
    # As sharp as the face: a crisp mask on a blurred face would tell "synthetic" apart.
    # The template, warped and feathered, is about as sharp as a 0.7 px blur already.
    sigma = float(np.sqrt(max(blur_sigma(image, box) ** 2 - 0.7 ** 2, 0.0)))
    if sigma > 0.3:
        colour = cv2.GaussianBlur(colour, (0, 0), sigmaX=sigma)
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma)[..., None]
    out = image.astype(np.float32) / 255.0 * (1 - alpha) + np.clip(colour, 0, 1) * alpha
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def blur_sigma(image: np.ndarray, box) -> float:
    """The Gaussian blur (sigma, pixels) the face at ``box`` already has, estimated by
    blurring it once more by 1 px: a sharp face loses most of its fine detail to that, a
    blurred one little. For an edge blurred by sigma, the Laplacian's energy falls by
    about (sigma² / (sigma² + 1))^2.5. Past about 2 px, pixel noise hides the rest of the
    fine detail, so the estimate stops there (the training blur augmentation goes further)."""
    x, y, w, h = (int(v) for v in box)
    region = image[max(0, y):max(0, y) + max(1, h), max(0, x):max(0, x) + max(1, w)]
    if region.size == 0 or min(region.shape[:2]) < 8:
        return 0.0
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = float(np.mean(cv2.Laplacian(grey, cv2.CV_32F) ** 2))
    if energy < 1e-6:
        return 0.0
    again = float(np.mean(cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 1.0), cv2.CV_32F) ** 2))
    q = min(again / energy, 0.999) ** 0.4
    return float(np.clip(np.sqrt(q / (1 - q)), 0.0, 2.0))


def _shrinks(matrix: np.ndarray, template: Template) -> bool:
    """Whether the warp makes the template smaller (area filtering then avoids aliasing)."""
    corners = template.anchors[[0, 2, 4]].reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(corners, matrix).reshape(-1, 2)
    before = np.linalg.norm(corners[0, 0] - corners[1, 0])
    return float(np.linalg.norm(moved[0] - moved[1])) < before


def random_style(rng: np.random.Generator, textures: list[Path], kind: str | None = None
                 ) -> Style:
    """A style of ``kind`` (own, plain, black, navy, grey, pink, patterned; None: any),
    with random strengths: the variety the classifier must learn to call masked."""
    kinds = ("own", "plain", "black", "navy", "grey", "pink", "patterned")
    kind = kind or str(rng.choice(kinds, p=(0.3, 0.15, 0.15, 0.1, 0.1, 0.05, 0.15)))
    shading = float(rng.uniform(0.4, 1.0))
    light = float(rng.uniform(0.6, 1.0))
    if kind == "own":
        return Style(None, None, 1.0, shading, light)
    if kind == "patterned" and textures:
        texture = str(textures[int(rng.integers(len(textures)))])
        base = str(rng.choice(list(COLOURS)))
        return Style(base, texture, float(rng.uniform(0.6, 1.0)), shading, light)
    if kind == "plain":
        hue, sat, val = rng.uniform(0, 1), rng.uniform(0.2, 0.9), rng.uniform(0.25, 0.95)
        r, g, b = (int(255 * c) for c in colorsys.hsv_to_rgb(hue, sat, val))
        return Style(f"rgb:{r},{g},{b}", None, 1.0, shading, light)
    return Style(kind if kind in COLOURS else "black", None, 1.0, shading, light)


def zoo_textures(textures: list[Path]) -> list[Path]:
    """The textures kept out of training for ``edge eval --zoo`` (every fourth, by name), so
    that its patterned row shows patterns the classifier never saw."""
    return [t for i, t in enumerate(sorted(textures)) if i % 4 == 3]


def training_textures(textures: list[Path]) -> list[Path]:
    """The textures training may use: all but :func:`zoo_textures`."""
    held = set(zoo_textures(textures))
    return [t for t in sorted(textures) if t not in held]
