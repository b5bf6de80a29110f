"""Edge-cloud collaboration: `engine` (one request through one of the four modes), `completion` (the request's fact
selection, made once, and everything rendered from it: the completed prompt, the context answers; faithful by
construction), `edge_lm` (the edge model with its `complete` adapter), `scoring` (how bench/collab.py grades the
cloud's own text)."""
