"""Model backends: the contract (`base`), the factory, and the hf, vLLM, OpenAI-compatible
and scripted backends (registered in `evalkit.registry.BACKENDS`)."""
