"""Every claim's verdict, read back from the results store without computing anything.

    python -m jdlib.claims --params full --json
"""
from __future__ import annotations

from .analysis.verdicts import main

if __name__ == "__main__":
    main()
