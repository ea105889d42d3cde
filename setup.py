from setuptools import find_packages, setup

setup(
    name="promoter_modelling",
    version="0.1.0",
    description="Predict promoter-driven expression from DNA sequence, with multi-task pretraining on genomic assays.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["promoter_modelling", "promoter_modelling.*"]),
    package_data={"promoter_modelling": ["data/*.meme", "data/*.md"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.2",
        "lightning>=2.2",
        "torchmetrics>=1.3",
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "pyfaidx",
        "gdown",
        "wandb",
        "transformers",
        "h5py",
        "tqdm",
        "pyarrow",
        "matplotlib",
        "memelite>=0.5",
        "tangermeme",
        "odfpy",
        "joblib",
        "rapidfuzz>=3",  # edit distances of designed promoters
        "modisco-lite>=3",  # TF-MoDISco on attributions
        "logomaker",  # attribution and motif logos
        # what enformer-pytorch's modelling code imports; the package itself is installed without
        # its dependencies (its exact transformers pin would replace the version DNABERT uses):
        # pip install --no-deps enformer-pytorch==0.8.12 (make setup does this)
        "einops>=0.3",
        "polars",
        "pyyaml",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "ruff", "rotary-embedding-torch"]},
    entry_points={"console_scripts": ["promoter-modelling=promoter_modelling.cli:main"]},
)
