class PaymentDeclined(Exception):
    """Raised by a task, so its result names this class."""
