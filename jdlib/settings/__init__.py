"""One module per difficulty setting: its config, its grid of cells and how a cell runs."""
from . import setting1

CONFIGS = {"setting1": setting1.Setting1Config}
RUNNERS = {"setting1": setting1.run}
