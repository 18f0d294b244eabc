"""The papers' stated option values that several modules share: the Methods' config defaults
(which their nominal schedules use too), the harness's paper-level options
(``replicate.harness.options``) and the HoliTom tables. No imports, so the workflow can read it
while parsing its rules. LLM layer indices are for the 28-layer Qwen2-7B of LLaVA-OV-7B.
"""

PAPER_LLM_LAYERS = 28
FASTV_K = 2                           # FastV's K in HoliTom's and Tango's comparisons
PDROP_BOUNDARIES_OF_32 = (8, 16, 24)  # PyramidDrop's stage boundaries, of a 32-layer LLM
PDROP_LAMBDA = 0.5
HOLITOM_INNER_K = 18                  # HOLITOM_k: Stage III merges before this layer
HOLITOM_INNER_R = 0.5                 # HOLITOM_r: fraction of the visual tokens merged away
HOLITOM_MERGE = "running-pairwise"    # the official Stage III merge rule
PRUNEVID_SELECTED_LAYER = 10          # eval.sh: prune after this layer
TANGO_INTRA_K = 18
TANGO_INTRA_KEEP = 0.5
DYCOKE_DECODE_LAYER = 3
STTS_PRUNE_AT = 3
