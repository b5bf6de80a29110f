"""Language models: offline base models, LoRA fine-tuning with peft, adapter serving and the cloud LLM service."""
