"""Simulates the device image on a CPU machine (loaded by `site` when this folder is on PYTHONPATH).

The path finder is wrapped so that a top-level module found only in a site-packages folder looks
absent (its spec is None, as for a module that is not installed) unless it is in the JSON list
`$HYBRIDZOO_IMAGE_MODULES` (the image's packages). The project, the standard library and the
unpacked `.whl/` folder live outside site-packages and import as usual.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.machinery import PathFinder


def _in_site_packages(spec) -> bool:
    places = [spec.origin or "", *(spec.submodule_search_locations or [])]
    return all("site-packages" in p or "dist-packages" in p for p in places)


class ImagePathFinder(PathFinder):
    """`PathFinder` that hides the site-packages modules the image does not have."""

    allowed: frozenset[str] = frozenset()

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        spec = super().find_spec(fullname, path, target)
        hidden = path is None and fullname not in cls.allowed and spec is not None and _in_site_packages(spec)
        return None if hidden else spec


_listing = os.environ.get("HYBRIDZOO_IMAGE_MODULES")
if _listing:
    with open(_listing) as _file:
        ImagePathFinder.allowed = frozenset(json.load(_file))
    sys.meta_path[:] = [ImagePathFinder if f is PathFinder else f for f in sys.meta_path]
