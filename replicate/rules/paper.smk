# paper tier: placeholder, filled below
EVALUATOR_PLUGINS += ["replicate.paper.evaluators"]
