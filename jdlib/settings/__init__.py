"""One module per difficulty setting: its config, its grid of cells and how a cell runs."""
from . import setting1, setting5

CONFIGS = {"setting1": setting1.Setting1Config, "setting5": setting5.Setting5Config}
RUNNERS = {"setting1": setting1.run, "setting5": setting5.run}
