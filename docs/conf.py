"""Sphinx configuration for the lightning-snn documentation.

``make docs`` builds the site with the tutorials executed (sphinx-gallery); ``make docs-fast`` (what CI runs)
builds the same site without executing them. Both treat every warning as an error (``-W``) and run in
nitpicky mode, so a broken cross-reference into ``lightning_snn`` or a docstring that fails to render fails
the build.
"""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)  # gallery_setup

project = "lightning-snn"
author = "lightning-snn contributors"
copyright = "2026, lightning-snn contributors"  # noqa: A001
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# build/ is where sphinx-gallery writes the executed tutorials (ignored by git, see .gitignore).
exclude_patterns = [
    "_build",
    "tutorials/README.rst",
    "build/tutorials/*.ipynb",
    "build/tutorials/*.py",
    "build/tutorials/*.zip",
]

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": False, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_inherit_docstrings = False
autodoc_mock_imports: list[str] = []

# Broken references into lightning_snn fail the build; third-party names (torch, lightning, numpy, ...)
# cannot be resolved without intersphinx, which needs the network CI does not have.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(torch|triton|lightning|pytorch_lightning|numpy|np|nir|snntorch|spikingjelly|tonic|wandb|h5py|numba|"
        r"jsonargparse|torchmetrics|matplotlib|typing_extensions|collections|typing|os|pathlib|enum|abc|dataclasses|"
        r"contextlib|concurrent|argparse|functools)(\..*)?",
    ),
    (
        r"py:.*",
        r"(Tensor|Module|Parameter|Callback|Trainer|LightningModule|LightningDataModule|DataLoader|Dataset|"
        r"Generator|Path|Any|Callable|Iterable|Iterator|Sequence|Mapping|Literal|Optional|Union|TypeVar|Self|"
        r"STEP_OUTPUT|OptimizerLRScheduler|LRSchedulerConfig|Optimizer|Sampler|Enum|NamedTuple|Protocol)",
    ),
    # type aliases in signatures (``NeuronSpec = str | type | dict | None``), shown as written
    (r"py:class", r"(nn\..*|NeuronSpec|TauSpec|TauInit|SurrogateGrad|Number)"),
    (r"py:class", r"(int|float|str|bool|bytes|dict|list|tuple|set|object|type|None|optional|callable)"),
]

html_theme = "alabaster"
html_title = "lightning-snn"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Spiking networks with learned τ, delays and stochastic spikes",
    "fixed_sidebar": True,
}

sphinx_gallery_conf = {
    "examples_dirs": ["tutorials"],
    "gallery_dirs": ["build/tutorials"],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "write_computation_times": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib", "gallery_setup.quiet"),
    "show_memory": False,
    "min_reported_time": 1e9,
}
# `make docs-fast` passes -D plot_gallery=0: the tutorials are rendered as pages, not executed.


def _find(dotted: str):
    """The object at ``dotted`` (``pkg.module.Class.attr``), or None when there is none."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_python_reference(app, env, node, contnode):
    """Resolve references into ``lightning_snn`` that Sphinx's own lookup misses; leave broken ones broken.

    - ``lightning_snn.pkg.Name`` where ``pkg`` re-exports ``Name`` (``from lightning_snn.neurons import
      LearnableLIF``): autodoc documents each object once, under its defining module, so the reference is
      redirected there;
    - a short name (``:class:`IntegerDelayLinear```, ``:func:`to_nir```) is looked up in the current class,
      the current module and its package, then redirected the same way;
    - a name that exists in the code but has no documentation entry (an undocumented constant such as
      ``ROLES``) is rendered as code without a link.

    A target that names nothing in the package is not handled here, so it still fails the build.
    """
    if node.get("refdomain") != "py":
        return None
    target = re.sub(r"\s+", "", node.get("reftarget", "")).lstrip("~.")
    module = node.get("py:module") or ""
    klass = node.get("py:class") or ""
    candidates = [target] if target.startswith("lightning_snn") else []
    if not candidates and module.startswith("lightning_snn"):
        scopes = [f"{module}.{klass}"] if klass else []
        parts = module.split(".")
        scopes += [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        candidates = [f"{scope}.{target}" for scope in scopes]
    domain = env.get_domain("py")
    for candidate in candidates:
        obj = _find(candidate)
        if obj is None:
            continue
        real = candidate
        name, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(name, str) and name.startswith("lightning_snn") and qualname and "<" not in qualname:
            real = f"{name}.{qualname}"
        for kind in (node["reftype"], "obj"):
            found = domain.resolve_xref(env, node["refdoc"], app.builder, kind, real, node, contnode)
            if found is not None:
                return found
            if real != candidate:
                found = domain.resolve_xref(env, node["refdoc"], app.builder, kind, candidate, node, contnode)
                if found is not None:
                    return found
        return contnode  # exists in the code, not documented: plain code, no link
    return None


def setup(app):
    app.connect("missing-reference", _resolve_python_reference)
