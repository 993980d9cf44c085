"""Importing roadseg is cheap and side-effect free: no MindSpore, no environment changes."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, os, sys
before = dict(os.environ)
import roadseg, roadseg.model
print(json.dumps({"mindspore": "mindspore" in sys.modules,
                  "changed": sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))}))
"""


def test_importing_roadseg_loads_no_mindspore_and_leaves_the_environment_alone():
    """``roadseg`` and ``roadseg.model`` (what a library user imports first); deeper modules import
    rasterio, which sets its own GDAL/PROJ certificate variables."""
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == {"mindspore": False, "changed": []}


def test_the_network_classes_are_reached_through_roadseg_model():
    code = "import roadseg.model as m; print(m.DLinkNet34.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.split()[-1] == "roadseg.model.network"


def test_every_public_name_resolves_to_the_module_it_is_documented_in():
    import roadseg

    for name in roadseg.__all__[1:]:
        value = getattr(roadseg, name)
        assert value.__module__ == roadseg._LAZY_EXPORTS[name], name
    assert "DLinkNet34" not in roadseg.__all__  # network classes live in roadseg.model
