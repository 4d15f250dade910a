"""churnwatch: event-driven churn-risk pipeline (import package ``streams``)."""

__version__ = "0.1.0"
