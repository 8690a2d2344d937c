"""polyvit: one TFX pipeline from raw video, audio and images to a served multimodal transformer."""

from setuptools import find_packages, setup

PACKAGES = ["core", "media", "demo", "transforms", "trainer", "serving", "components", "pipeline"]

setup(
    name="polyvit",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    packages=find_packages(include=[p for name in PACKAGES for p in (name, f"{name}.*")]),
    package_data={"core": ["schema/*.pbtxt"]},
    # The exact versions live in requirements.lock (installed by the Makefile); these name what
    # the code imports, so that `pip check` and other installers see the real dependencies.
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tf-keras==2.16.*",
        "apache-beam[gcp]==2.61.0",
        "kfp==2.9.*",
        "av",
        "simplejpeg",  # libjpeg-turbo in a self-contained wheel: the frame encoder
        "PyYAML",
        "scikit-learn",
        "scipy",
        "matplotlib",
        "grpcio-health-checking",
    ],
    extras_require={
        "test": [
            "pytest",
            "pytest-timeout",
            "ruff",
            "mypy",
            "types-PyYAML",
            "kubernetes-validate",
            "kfp-kubernetes",
        ]
    },
    entry_points={"console_scripts": ["polyvit = pipeline.cli:main"]},
)
