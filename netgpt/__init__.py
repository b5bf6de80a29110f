"""NetGPT: AI-native network management for SDN/MEC. One package; its components keep their own top-level folders.

    netgpt.core          settings, the cross-process message contract, the Redis bus (imports nothing above it)
    netgpt.mininet_topos topologies (mininet_topos/)
    netgpt.models        language models, LoRA fine-tuning, serving, the cloud LLM service (models/)
    netgpt.controller    the Ryu apps (controller/)
    netgpt.edge_agent    the MEC-node agent (edge_agent/)
    netgpt.intent        operator intents in natural language (intent/)
    netgpt.stack         running things: services, the Mininet runner, its controller feed
    netgpt.demo          the main job
    netgpt.cli           the `netgpt` command

Lower layers never import higher ones (tests/unit/test_layers.py).
"""

__version__ = "0.1.0"
