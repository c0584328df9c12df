"""transformers-dhrd: Dual-Head Reasoning Distillation (arXiv 2509.21487), Hugging Face native."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# Ranges, not pins: an installed torch that satisfies them is kept (pip never swaps it for another build).
INSTALL_REQUIRES = [
    "torch>=2.4",
    "transformers>=5.20,<6",
    "datasets>=4.0",  # `datasets.List` (the normalised columns' features)
    "peft>=0.17",
    "huggingface_hub>=1.0",
    "safetensors>=0.4",
    "accelerate>=1.0",
    "gguf>=0.10",
    "pyyaml>=6.0",
    "tqdm>=4.60",
]

setup(
    name="transformers-dhrd",
    version="0.1.0",
    description="Dual-Head Reasoning Distillation: CoT-trained classifiers at pooled-classifier speed",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # Every sub-package of the three (trainer's rooms included), found rather than listed.
    packages=find_packages(include=["configuration_dhrd", "modeling_dhrd", "trainer", "trainer.*"]),
    package_data={"trainer.cli": ["demo_reference.json"]},  # the demo's measured reference rows
    install_requires=INSTALL_REQUIRES,
    entry_points={"console_scripts": ["dhrd = trainer.cli:main"]},
    extras_require={
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6", "matplotlib>=3.7"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
