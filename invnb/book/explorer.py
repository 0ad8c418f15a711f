"""Interactive explorer of the layer-wise inverse (ipywidgets).

Pick an image, the class to explain, a layer and the sparsity weight
``mask_weight``; the explorer shows the image, the inverse input, the
attribution map, and the forward and inverse feature maps of the chosen layer.

Two views of one :class:`InverseExplorer`:

* :meth:`InverseExplorer.view` is *live*: every change of a control runs the
  inverse (results are cached per image, class and ``mask_weight``) and
  updates the panels. It needs a running kernel.
* :meth:`InverseExplorer.static_view` is *self-contained*: it pre-renders every
  combination of a few images, the ``mask_weight`` values and the layers, and
  switches between them with ``jslink``-ed controls that run in the browser.
  Saved with the notebook, it keeps working in the static HTML book, without
  a kernel or network access.

Images are drawn with Pillow (PNG bytes for ``ipywidgets.Image``); nothing
here imports matplotlib.

Examples
--------
>>> explorer = InverseExplorer(model, x, mean=MEAN, std=STD, class_names=CLASS_NAMES)  # doctest: +SKIP
>>> explorer.view()                        # in a notebook: live widgets   # doctest: +SKIP
>>> explorer.static_view(images=[0, 1])    # pre-rendered, works offline   # doctest: +SKIP
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from invnb.eval.reid import amount_of_activation
from invnb.inverse.engine import LayerwiseInverse
from invnb.plot.images import colorize, colour_scale_html, to_png
from invnb.runs.store import ResultStore

__all__ = ["ExplorerItem", "InverseExplorer"]


PREDICTED = -1  # the "class" control's value meaning "explain the predicted class"


def _display_image(x: torch.Tensor, mean, std) -> np.ndarray:
    """(C, H, W) normalised tensor -> (H, W, 3) in [0, 1] for display."""
    a = x.detach().float().cpu().numpy()
    if mean is not None:
        a = a * np.asarray(std, dtype=np.float64).reshape(-1, 1, 1) + np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
    elif a.min() < 0 or a.max() > 1:
        lo, hi = a.min(), a.max()
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    a = np.clip(a, 0, 1).transpose(1, 2, 0)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


@dataclass(frozen=True)
class ExplorerItem:
    """What the explorer shows for one image, class and ``mask_weight``.

    Attributes
    ----------
    inverse_input : numpy.ndarray
        ``(C, H, W)`` inverse input (normalised space).
    attribution : numpy.ndarray
        ``(H, W)`` attribution map in [0, 1].
    forward_maps, inverse_maps : dict of int to numpy.ndarray
        Per feature-map layer index ``k``: ``sum_c |x_k|`` and ``sum_c |t_k|``,
        ``(H_k, W_k)``, of the forward activation and the inverse feature.
    scalars : dict
        ``explained`` (class index), ``predicted``, ``reidentified`` (class of
        the model on the inverse input equals the explained class),
        ``amount`` (the paper's amount of activation, see
        :func:`invnb.eval.amount_of_activation`), ``failed``.
    """

    inverse_input: np.ndarray
    attribution: np.ndarray
    forward_maps: dict
    inverse_maps: dict
    scalars: dict

    def to_store(self) -> dict:
        """Flatten into arrays and scalars for :class:`invnb.runs.ResultStore`."""
        arrays = {"inverse_input": self.inverse_input, "attribution": self.attribution}
        arrays.update({f"forward_{k}": v for k, v in self.forward_maps.items()})
        arrays.update({f"inverse_{k}": v for k, v in self.inverse_maps.items()})
        return {"arrays": arrays, "scalars": dict(self.scalars)}

    @classmethod
    def from_store(cls, arrays: Mapping[str, np.ndarray], scalars: Mapping[str, Any]) -> "ExplorerItem":
        """Inverse of :meth:`to_store`."""
        fwd = {int(k.split("_", 1)[1]): v for k, v in arrays.items() if k.startswith("forward_")}
        inv = {int(k.split("_", 1)[1]): v for k, v in arrays.items() if k.startswith("inverse_") and k != "inverse_input"}
        return cls(arrays["inverse_input"], arrays["attribution"], fwd, inv, dict(scalars))


class InverseExplorer:
    """Widgets to explore the layer-wise inverse of a classifier on a few images.

    Parameters
    ----------
    model : nn.Module
        Classifier with ``(N, K)`` logits, in eval mode.
    x : torch.Tensor
        ``(N, C, H, W)`` images as the model sees them (normalised), on the
        model's device.
    mean, std : sequence of float, optional
        Per-channel normalisation of `x`, undone for display (otherwise the
        images are min-max scaled).
    class_names : sequence of str, optional
        Names of the K classes (default ``"class 0"``, ...).
    labels : torch.Tensor, optional
        ``(N,)`` true classes, shown in the image menu.
    mask_weights : sequence of float or "auto"
        The values the ``mask_weight`` slider offers; ``"auto"`` is the
        default inverse's per-image choice (the weight it picked is shown).
    inverse_kwargs : mapping, optional
        Other arguments of :class:`invnb.LayerwiseInverse` (``penalty``,
        ``solver``, ``max_iter``, ...).
    store : ResultStore, optional
        Persist computed items there and reuse them on the next run (keys
        ``img{i}-{class or "pred"}-mw{mask_weight}``). Its config should
        identify the model, the images and `inverse_kwargs`.
    size : int
        Width in pixels of each image panel.

    Examples
    --------
    >>> ex = InverseExplorer(model, x, mean=MEAN, std=STD, mask_weights=[0.5, 1, 2])  # doctest: +SKIP
    >>> ex.controls["mask_weight"].value = 2                                        # doctest: +SKIP
    >>> ex.summary()["reidentified"]                                                # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        class_names: Sequence[str] | None = None,
        labels: torch.Tensor | None = None,
        mask_weights: Sequence[float | str] = ("auto", 0.5, 1.0, 2.0, 4.0),
        inverse_kwargs: Mapping[str, Any] | None = None,
        store: ResultStore | None = None,
        size: int = 160,
    ):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"x must be a (N, C, H, W) tensor of images, got {getattr(x, 'shape', type(x))}")
        if len(mask_weights) == 0 or any(m != "auto" and (isinstance(m, str) or float(m) < 0) for m in mask_weights):
            raise ValueError(f"mask_weights must be a non-empty list of numbers >= 0 or 'auto', got {list(mask_weights)}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std (to undo the normalisation for display), or neither")
        self.model = model.eval()
        self.x = x.detach()
        self.mean, self.std = mean, std
        self.mask_weights = [_weight(m) for m in mask_weights]
        self.inverse_kwargs = dict(inverse_kwargs or {})
        if "mask_weight" in self.inverse_kwargs:
            raise ValueError("pass mask_weight through mask_weights, not inverse_kwargs")
        if self.inverse_kwargs.get("keep_features") is False:
            raise ValueError("the explorer shows every layer's inverse feature: drop keep_features=False")
        self.store = store
        self.size = int(size)
        with torch.no_grad():
            self.logits = model(self.x)
        if self.logits.dim() != 2:
            raise ValueError(f"the explorer needs a classifier with (N, K) logits; the model gives {tuple(self.logits.shape)}")
        n_classes = self.logits.shape[1]
        self.class_names = list(class_names) if class_names is not None else [f"class {c}" for c in range(n_classes)]
        if len(self.class_names) != n_classes:
            raise ValueError(f"{len(self.class_names)} class names for a model with {n_classes} outputs")
        self.labels = None if labels is None else torch.as_tensor(labels).reshape(-1).cpu()
        if self.labels is not None and len(self.labels) != len(self.x):
            raise ValueError(f"{len(self.labels)} labels for {len(self.x)} images")
        self.predicted = self.logits.argmax(1).cpu()
        self._inverses: dict[float, LayerwiseInverse] = {}
        self._cache: dict[tuple[int, int, float], ExplorerItem] = {}
        stack = self._inverse(self.mask_weights[0]).stack.to(self.x.device)
        acts = stack.record(self.x[:1])
        # Feature maps worth showing: the image (k = 0) and the output of every ReLU and
        # pooling layer (a conv's own output is its ReLU's input, shown after the ReLU).
        shown = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d)
        self.layers = [k for k in range(len(stack.layers) + 1)
                       if acts[k].dim() == 4 and (k == 0 or isinstance(stack.layers[k - 1], shown))]
        self.layer_labels = {
            k: ("input image" if k == 0 else f"{stack.names[k - 1]} ({type(stack.layers[k - 1]).__name__})")
            + ", " + "x".join(str(s) for s in acts[k].shape[1:])
            for k in self.layers
        }
        self.controls: dict[str, Any] = {}
        self.panels: dict[str, Any] = {}
        self.info = None
        self.links: list = []  # the jslink objects of the last static view
        self._widget = None

    # ------------------------------------------------------------ computing
    def _inverse(self, mask_weight: float | str) -> LayerwiseInverse:
        if mask_weight not in self._inverses:
            self._inverses[mask_weight] = LayerwiseInverse(self.model, mask_weight=mask_weight, **self.inverse_kwargs)
        return self._inverses[mask_weight]

    @staticmethod
    def key(image: int, target: int, mask_weight: float) -> str:
        """Store key of one item, e.g. ``img3-pred-mw1``."""
        return f"img{image}-{'pred' if target == PREDICTED else target}-mw{_label(_weight(mask_weight))}"

    def _compute(self, image: int, target: int, mask_weight: float) -> ExplorerItem:
        x = self.x[image : image + 1]
        inv = self._inverse(mask_weight)
        res = inv.invert(x, target=None if target == PREDICTED else int(target))
        acts = inv.stack.record(x)
        explained = int(res.classes[0])
        with torch.no_grad():
            again = int(self.model(res.input).argmax(1)[0])
        failed = bool(res.failed[0])
        chosen = float(res.mask_weight[0]) if res.mask_weight is not None else float(mask_weight)
        attribution = res.attribution[0].cpu().numpy()
        return ExplorerItem(
            inverse_input=res.input[0].cpu().numpy(),
            attribution=attribution,
            forward_maps={k: acts[k][0].abs().sum(0).cpu().numpy() for k in self.layers},
            inverse_maps={k: res.features[k][0].abs().sum(0).cpu().numpy() for k in self.layers},
            scalars={
                "explained": explained,
                "predicted": int(self.predicted[image]),
                "reidentified": again == explained and not failed,
                "amount": float(amount_of_activation(res.input, x)[0]),
                "failed": failed,
                "chosen_weight": chosen,
            },
        )

    def item(self, image: int, target: int = PREDICTED, mask_weight: float | None = None) -> ExplorerItem:
        """The inverse of one image for one class and ``mask_weight`` (computed once, then cached).

        Parameters
        ----------
        image : int
            Index into `x`.
        target : int
            Class to explain, or ``-1`` for the predicted class.
        mask_weight : float or "auto", optional
            Default: the first of `mask_weights`.
        """
        if not 0 <= image < len(self.x):
            raise IndexError(f"image {image} out of range 0..{len(self.x) - 1}")
        if target != PREDICTED and not 0 <= target < len(self.class_names):
            raise ValueError(f"target must be -1 (predicted) or a class in 0..{len(self.class_names) - 1}, got {target}")
        mw = self.mask_weights[0] if mask_weight is None else _weight(mask_weight)
        cache_key = (int(image), int(target), mw)
        if cache_key not in self._cache:
            key = self.key(image, target, mw)
            if self.store is not None and self.store.done(key):
                rec = self.store.load(key)
                self._cache[cache_key] = ExplorerItem.from_store(rec.arrays, rec.scalars)
            else:
                item = self._compute(image, target, mw)
                if self.store is not None:
                    self.store.save(key, **item.to_store())
                self._cache[cache_key] = item
        return self._cache[cache_key]

    def precompute(self, images: Sequence[int] | None = None, target: int = PREDICTED, progress: bool = False):
        """Compute (or load from the store) every ``mask_weight`` for the given images.

        Returns
        -------
        invnb.runs.RunResult or None
            With a store: which items were computed and which reused; else None.
        """
        from invnb.runs.tasks import run_items

        images = list(range(len(self.x))) if images is None else [int(i) for i in images]
        if self.store is None:
            for i in images:
                for mw in self.mask_weights:
                    self.item(i, target, mw)
            return None
        keys, where = [], {}
        for i in images:
            for mw in self.mask_weights:
                keys.append(self.key(i, target, mw))
                where[keys[-1]] = (i, target, mw)

        def fn(key):
            i, t, mw = where[key]
            item = self._cache.get((i, t, mw)) or self._compute(i, t, mw)
            return item.to_store()

        result = run_items(keys, _StoreAdapter(fn), self.store, progress=progress, desc="inverse")
        for rec in result.records:
            i, t, mw = where[rec.key]
            self._cache.setdefault((i, t, mw), ExplorerItem.from_store(rec.arrays, rec.scalars))
        return result

    # ------------------------------------------------------------ rendering
    def _panel_pngs(self, image: int, item: ExplorerItem) -> dict[str, bytes]:
        shown = _display_image(self.x[image], self.mean, self.std)
        xhat = _display_image(torch.from_numpy(item.inverse_input), self.mean, self.std)
        grey = shown.mean(axis=2, keepdims=True)
        overlay = 0.35 * grey + 0.65 * colorize(item.attribution, vmax=1.0)
        return {"image": to_png(shown, self.size), "inverse input": to_png(xhat, self.size),
                "attribution": to_png(overlay, self.size)}

    def _feature_pngs(self, item: ExplorerItem, k: int) -> tuple[bytes, bytes]:
        fwd, inv = item.forward_maps[k], item.inverse_maps[k]
        vmax = float(fwd.max())  # one scale: the inverse can only be weaker than the forward map
        return to_png(colorize(fwd, vmax), self.size), to_png(colorize(inv, vmax), self.size)

    def _info_html(self, image: int, item: ExplorerItem, mask_weight: float | str) -> str:
        s = item.scalars
        name = self.class_names
        true = "" if self.labels is None else f"true class <b>{html.escape(name[int(self.labels[image])])}</b>, "
        verdict = ("inverse input <b>re-identified</b>" if s["reidentified"]
                   else "inverse input <b>not re-identified</b>" + (" (all zero)" if s["failed"] else ""))
        weight = _label(mask_weight)
        if mask_weight == "auto" and "chosen_weight" in s:
            weight += f" (it chose {s['chosen_weight']:g})"
        return (f"image {image}: {true}predicted <b>{html.escape(name[s['predicted']])}</b>; explaining "
                f"<b>{html.escape(name[s['explained']])}</b> at mask_weight {weight}: {verdict}; "
                f"amount of activation {s['amount']:.3f}")

    def _image_options(self):
        opts = []
        for i in range(len(self.x)):
            label = f"{i}" if self.labels is None else f"{i}: {self.class_names[int(self.labels[i])]}"
            opts.append((label, i))
        return opts

    def _make_controls(self, images: Sequence[int] | None, with_target: bool):
        import ipywidgets as w

        opts = self._image_options()
        if images is not None:
            opts = [opts[i] for i in images]
        style = {"description_width": "initial"}
        controls = {
            "image": w.Dropdown(options=opts, description="image", style=style),
            "layer": w.Dropdown(options=[(self.layer_labels[k], k) for k in self.layers], description="layer", style=style),
            "mask_weight": w.SelectionSlider(options=[(_label(m), m) for m in self.mask_weights],
                                             value=self.mask_weights[0], description="mask_weight", style=style),
        }
        if with_target:
            controls["target"] = w.Dropdown(
                options=[("predicted class", PREDICTED)] + [(n, c) for c, n in enumerate(self.class_names)],
                description="class", style=style)
        return controls

    @staticmethod
    def _captioned(widget, caption: str):
        import ipywidgets as w

        return w.VBox([w.HTML(f"<div style='text-align:center'>{html.escape(caption)}</div>"), widget],
                      layout=w.Layout(align_items="center"))

    def view(self):
        """The live explorer: controls that re-run the inverse and update the panels.

        Returns
        -------
        ipywidgets.VBox
            Its ``controls`` (``image``, ``target``, ``layer``, ``mask_weight``)
            are also in ``self.controls``, its image panels in ``self.panels``
            and the text line in ``self.info``.
        """
        import ipywidgets as w

        if self._widget is not None:
            return self._widget
        self.controls = self._make_controls(None, with_target=True)
        names = ["image", "inverse input", "attribution", "forward feature", "inverse feature"]
        self.panels = {n: w.Image(format="png", width=self.size, height=self.size) for n in names}
        self.info = w.HTML()
        for c in self.controls.values():
            c.observe(self._on_change, names="value")
        self.update()
        c = self.controls
        self._widget = w.VBox([
            w.HBox([c["image"], c["target"]]),
            w.HBox([c["mask_weight"], c["layer"]]),
            w.HBox([self._captioned(p, n) for n, p in self.panels.items()]),
            self.info,
            w.HTML(colour_scale_html()),
        ])
        return self._widget

    def _on_change(self, change) -> None:
        self.update()

    def summary(self) -> dict:
        """The current selection of the live view and its result's scalars."""
        c = self.controls
        item = self.item(c["image"].value, c["target"].value, c["mask_weight"].value)
        return {"image": c["image"].value, "target": c["target"].value, "layer": c["layer"].value,
                "mask_weight": c["mask_weight"].value, **item.scalars}

    def update(self) -> None:
        """Recompute (or fetch from the cache) the current selection and redraw the panels."""
        c = self.controls
        image, target, mw, k = c["image"].value, c["target"].value, c["mask_weight"].value, c["layer"].value
        item = self.item(image, target, mw)
        pngs = self._panel_pngs(image, item)
        pngs["forward feature"], pngs["inverse feature"] = self._feature_pngs(item, k)
        for name, png in pngs.items():
            self.panels[name].value = png
        self.info.value = self._info_html(image, item, mw)

    def static_view(self, images: Sequence[int] | None = None, target: int = PREDICTED, progress: bool = False):
        """A pre-rendered explorer that works without a kernel (e.g. in the HTML book).

        Every combination of `images`, ``mask_weights`` and layers is
        rendered once; the controls switch between them through ``jslink``
        (in the browser), so the saved widget state stays interactive.

        Parameters
        ----------
        images : sequence of int, optional
            Which images to include (default: all).
        target : int
            The class to explain, ``-1`` for each image's predicted class.
        progress : bool
            Progress bar while computing.

        Returns
        -------
        ipywidgets.VBox
            Controls (image, ``mask_weight``, layer) above nested
            ``ipywidgets.Stack`` s of pre-rendered panels, and the colour
            scale below them; the links are in ``self.links``.
        """
        import ipywidgets as w

        images = list(range(len(self.x))) if images is None else [int(i) for i in images]
        self.precompute(images, target, progress=progress)
        ctl = self._make_controls(images, with_target=False)
        self.links = []

        def link(control, stack):
            self.links.append(w.jslink((ctl[control], "index"), (stack, "selected_index")))

        def img(png):
            return w.Image(value=png, format="png", width=self.size, height=self.size)

        per_image = []
        for i in images:
            forward_stack, image_panel = None, None
            per_weight = []
            for mw in self.mask_weights:
                item = self.item(i, target, mw)
                feats = [self._feature_pngs(item, k) for k in self.layers]
                if forward_stack is None:
                    forward_stack = w.Stack([img(f) for f, _ in feats], selected_index=0)
                    link("layer", forward_stack)
                inverse_stack = w.Stack([img(v) for _, v in feats], selected_index=0)
                link("layer", inverse_stack)
                pngs = self._panel_pngs(i, item)
                if image_panel is None:  # one widget, shown under every weight
                    image_panel = self._captioned(img(pngs["image"]), "image")
                per_weight.append(w.VBox([
                    w.HBox([image_panel,
                            self._captioned(img(pngs["inverse input"]), "inverse input"),
                            self._captioned(img(pngs["attribution"]), "attribution"),
                            self._captioned(forward_stack, "forward feature"),
                            self._captioned(inverse_stack, "inverse feature")]),
                    w.HTML(self._info_html(i, item, mw)),
                ]))
            weights = w.Stack(per_weight, selected_index=0)
            link("mask_weight", weights)
            per_image.append(weights)
        outer = w.Stack(per_image, selected_index=0)
        link("image", outer)
        return w.VBox([w.HBox([ctl["image"], ctl["mask_weight"]]), ctl["layer"], outer, w.HTML(colour_scale_html())])


def _weight(m: float | str) -> float | str:
    """A ``mask_weight`` as the explorer keeps it: ``"auto"`` or a float."""
    return "auto" if m == "auto" else float(m)


def _label(m: float | str) -> str:
    return "auto" if m == "auto" else f"{float(m):g}"


class _StoreAdapter:
    """Turn ``fn(key) -> {"arrays":..., "scalars":...}`` into a `run_items` function."""

    def __init__(self, fn: Callable[[str], dict]):
        self.fn = fn

    def __call__(self, key: str):
        from invnb.runs.store import Record

        out = self.fn(key)
        return Record(key, out["arrays"], out["scalars"])
