"""The client side of gmai-eval: the CLI, the model SDK, reference models and adapters."""

__all__: list[str] = []
