"""The agent on each MEC node: location-aware prompt completion, traffic forecasting and user-intent inference."""
