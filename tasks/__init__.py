"""Built-in tasks (installed as ``evalkit.tasks``), one module per task family; the registry
(`evalkit.registry.TASKS`) names each family's factory."""
