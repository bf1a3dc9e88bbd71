"""stream-app: a scikit-learn model served and watched on Kafka with Faust."""

__all__ = ["__version__"]

__version__ = "0.1.0"
