"""Rebuild promoter_modelling/data/jaspar_core_vertebrates.meme (and JASPAR_LICENSE.md) from the
JASPAR database bundled with pyjaspar (offline):

    pip install pyjaspar
    python scripts/make_default_meme.py [--release JASPAR2026] [--out_dir promoter_modelling/data]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from promoter_modelling.analysis.motifs import DATA_DIR, DEFAULT_JASPAR_RELEASE, make_default_meme  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", default=DEFAULT_JASPAR_RELEASE, help="JASPAR release bundled with pyjaspar")
    parser.add_argument("--out_dir", default=DATA_DIR)
    args = parser.parse_args(argv)
    print(f"wrote {make_default_meme(args.out_dir, args.release)}")


if __name__ == "__main__":
    main()
