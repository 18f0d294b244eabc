"""Baselines the papers compare against: vanilla, FastV, PyramidDrop (``inner_llm``), VisionZip,
random subset, uniform pooling (``pre_llm``), DyCoke, PruneVid, FastVID (one module each, the
algorithm and its registered Method). The papers' own methods are ``methods.holitom``,
``methods.tango`` and ``methods.stts`` / ``methods.stts_method``; the registry is
``methods.registry``."""
