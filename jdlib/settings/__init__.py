"""One module per difficulty setting: its config, its grid of cells and how a cell runs."""
from . import lmc, setting1, setting5, true_gem
from . import setting2, setting3, setting4, setting6
from . import compression

CONFIGS = {"setting1": setting1.Setting1Config, "setting5": setting5.Setting5Config,
           "true_gem": true_gem.TrueGemConfig, "lmc": lmc.LmcConfig}
RUNNERS = {"setting1": setting1.run, "setting5": setting5.run, "true_gem": true_gem.run, "lmc": lmc.run}

# The no-fine-tuning settings (scored as compressed, no task head).
CONFIGS.update({"setting2": setting2.Setting2Config, "setting3": setting3.Setting3Config,
                "setting4": setting4.Setting4Config, "setting6": setting6.Setting6Config})
RUNNERS.update({"setting2": setting2.run, "setting3": setting3.run, "setting4": setting4.run, "setting6": setting6.run})
CONFIGS["compression"] = compression.CompressionConfig  # pruning, quantization and low rank on Settings 2 and 3
RUNNERS["compression"] = compression.run
