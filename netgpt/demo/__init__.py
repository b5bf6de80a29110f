"""The main job, `make demo`: `run` brings up the stack and a topology and shows the loop; `edge` runs its edge part
(cloud LLM, edge agents, users prompting, MEC failover) inside the Mininet hosts."""
