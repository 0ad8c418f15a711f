"""A menu that switches between widgets (e.g. one explorer per model), also in the static book."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["model_switch"]


def model_switch(views: Mapping[str, Any], description: str = "model"):
    """One explorer per model behind a menu that switches between them, also in the static book.

    Parameters
    ----------
    views : mapping of str to ipywidgets.Widget
        Model name -> its explorer's view (:meth:`InverseExplorer.static_view` or ``view``).
    description : str
        Label of the menu.

    Returns
    -------
    ipywidgets.VBox
        The menu above an ``ipywidgets.Stack`` of the views, linked in the browser
        (``jslink``), so the switch needs no kernel.

    Examples
    --------
    >>> import ipywidgets as w
    >>> model_switch({"smallvgg": w.Label("VGG"), "smallresnet": w.Label("ResNet")}).children[1].selected_index
    0
    """
    import ipywidgets as w

    if not views:
        raise ValueError("model_switch needs at least one view")
    names = list(views)
    menu = w.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0, description=description)
    stack = w.Stack(list(views.values()), selected_index=0)
    link = w.jslink((menu, "index"), (stack, "selected_index"))
    box = w.VBox([menu, stack])
    box.links = [link]  # keep the link alive with the widget
    return box
