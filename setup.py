"""Packages: peftrun's own, plus the shipped recipes and schemas mapped in from the source tree (pyproject.toml)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["peftrun*"]), "peftrun._shipped.recipes", "peftrun._shipped.schemas"])
