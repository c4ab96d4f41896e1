"""Applications built on the model API: text generation, long-range tasks."""
