"""Package layout (everything else is in pyproject.toml): the code under src/, and the shipped run and sweep
configs of the top-level configs/ folder as the package ``noisyfer.configs`` (found by name at run time,
in a checkout, an editable install or a wheel)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages("src"), "noisyfer.configs", "noisyfer.configs.sweeps"], package_dir={"": "src", "noisyfer.configs": "configs"})
