"""Loads the ahelm plugin; everything else lives in the ahelm package."""

pytest_plugins = ["ahelm.plugin"]
