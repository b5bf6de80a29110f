"""User-intent inference: `classifier` (prompt -> service class, expected demand, confidence), `training_data`
(GENERATED training prompts), `demand` (per-cell demand forecasts from the inferred intents)."""
